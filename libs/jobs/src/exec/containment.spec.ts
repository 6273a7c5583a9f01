import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { waitFor } from '@coordbus/testing';
import { JobProcesses, listProcs, PidClock, pidClock, readStat } from './containment';

describe('PidClock', () => {
  /** A clock over a pid counter the test moves, as the kernel would. */
  const fake = (trustMs = 60_000) => {
    const pids = { last: 1000 as number | null };
    return { pids, clock: new PidClock(() => pids.last, trustMs) };
  };

  it('is quiet when every pid given out since the mark went to its own spawns', () => {
    const { pids, clock } = fake();
    const mark = clock.mark();
    expect(clock.quietSince(mark)).toBe(true);
    pids.last = 1002;
    clock.spawned();
    clock.spawned();
    expect(clock.quietSince(mark)).toBe(true);
  });

  it('is not quiet once anything else took a pid, or the counter wrapped, or there is no counter', () => {
    const { pids, clock } = fake();
    const mark = clock.mark();
    pids.last = 1002; // two pids, one spawn of ours: a job forked (or any task anywhere)
    clock.spawned();
    expect(clock.quietSince(mark)).toBe(false);
    pids.last = 301; // wrapped past pid_max
    expect(clock.quietSince(mark)).toBe(false);
    pids.last = null;
    expect(clock.quietSince(mark)).toBe(false);
    expect(clock.mark()).toBeNull();
    expect(clock.quietSince(null)).toBe(false);
  });

  it('names the pids given out since a mark, unless they wrapped or the mark is too old to tell', async () => {
    const { pids, clock } = fake(50);
    const mark = clock.mark();
    pids.last = 1010;
    expect(clock.pidsSince(mark)).toEqual({ after: 1000, upTo: 1010 });
    pids.last = 400;
    expect(clock.pidsSince(mark)).toBeNull();
    pids.last = 1010;
    await new Promise((r) => setTimeout(r, 80));
    expect(clock.pidsSince(mark)).toBeNull();
  });

  it("sees a process it did not spawn itself (the kernel's counter, for real)", () => {
    const mark = pidClock.mark();
    expect(mark).not.toBeNull();
    spawnSync('true');
    expect(pidClock.quietSince(mark)).toBe(false);
  });

  it('lists a process created since the mark among the pids given out since', async () => {
    const mark = pidClock.mark();
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const pids = listProcs(pidClock.pidsSince(mark)!).map((p) => p.pid);
      expect(pids).toContain(child.pid);
      expect(pids).not.toContain(process.pid);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('JobProcesses.sweep', () => {
  /** Spawns a job leader as the process runner does: counted, in its own group and session. */
  let jobs = 0;
  const start = (script: string) => {
    const marker = `spec-${process.pid}-${++jobs}`;
    const mark = pidClock.mark();
    const child = spawn('/bin/sh', ['-c', script], {
      stdio: ['ignore', 'pipe', 'ignore'],
      detached: true,
      env: { PATH: process.env.PATH, COORDBUS_JOB_ID: marker },
    });
    pidClock.spawned();
    // sampleMs 0: no sample while it runs, so only the exit sweep can find what it left.
    const procs = new JobProcesses(readStat(child.pid!)!, `COORDBUS_JOB_ID=${marker}`, 0, mark);
    const out = new Promise<string>((resolve) => {
      let s = '';
      child.stdout.on('data', (d: Buffer) => (s += d.toString()));
      child.once('close', () => resolve(s));
    });
    return { child, procs, out };
  };
  const alive = (pid: number) => {
    try {
      return !/^[ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]);
    } catch {
      return false;
    }
  };

  it('has nothing to end when the job started nothing', async () => {
    const { procs, out } = start('exit 0');
    await out;
    expect(await procs.sweep(300)).toEqual([]);
  });

  it('ends what the job left behind after it exited, in its own session too', async () => {
    // Their parent exits at once: the first is found by its group, the second (own session and
    // group) by the marker in its environment, among the pids given out since the spawn.
    const { procs, out } = start(`sleep 30 >/dev/null & echo $!; setsid sleep 30 >/dev/null & echo $!`);
    const pids = (await out).trim().split('\n').map(Number);
    expect(pids).toHaveLength(2);
    expect(pids.every(alive)).toBe(true);
    expect(await procs.sweep(300)).toEqual([]);
    await waitFor(() => pids.every((p) => !alive(p)), 'the left-over sleeps to end', 5000);
  });
});
