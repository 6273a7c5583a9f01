import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newUlid } from '@coordbus/envelope';
import { processRunning, waitFor } from '@coordbus/testing';
import { cancelJobs } from '../src/ops/cancel';
import { newJob } from '../src/queue/submit';
import { Harness } from './harness';

/**
 * Real processes: everything a job starts ends with it, and what it prints is bounded — whether
 * the job is forked here (the CLI) or by the replica's spawner helper process.
 */
describe.each(['in-process', 'helper'] as const)('jobs are contained (spawned %s)', (spawner) => {
  let h: Harness;
  let dir: string;
  beforeAll(async () => {
    h = await new Harness('jobs-contain', { killGraceMs: 300, spawner }).start();
  });
  afterAll(() => h.close());
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'jobs-contain-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const alive = processRunning;
  const pidFrom = (file: string) =>
    waitFor<number>(() => Number(readFileSync(file, 'utf8').trim()) || 0, file);
  const gone = (pid: number) => waitFor(() => !alive(pid), `pid ${pid} to be gone`, 5000);
  const sh = (script: string) => ({ argv: [script], shell: true, cwd: dir });

  it('a grandchild left running in the background ends when the job exits', async () => {
    const job = await h.run(sh('sleep 300 & echo $! > bg.pid; exit 0'));
    expect(job.status).toBe('succeeded');
    await gone(await pidFrom(join(dir, 'bg.pid')));
  });

  it('a grandchild that called setsid ends when the job is cancelled', async () => {
    const { meta, secrets } = newJob(
      h.request(sh('setsid sleep 300 & echo $! > s.pid; sleep 300')),
      newUlid(),
    );
    await h.submitter.recordForeground(meta);
    const running = h.executor.execute(meta.id, { secrets });
    const pid = await pidFrom(join(dir, 's.pid'));
    expect(alive(pid)).toBe(true);
    await cancelJobs(h.store, h.queue, { jobId: meta.id, filter: {} });
    const final = await running;
    expect(final!.status).toBe('cancelled');
    await gone(pid);
  });

  it('a double-forked daemon in its own session, reparented to init, still ends with the job', async () => {
    // The middle process exits at once: the daemon's parent chain to the job is gone.
    const job = await h.run(sh(`(setsid sh -c 'sleep 300 & echo $! > d.pid' &); sleep 0.5; exit 3`));
    expect(job.status).toBe('failed');
    const pid = await pidFrom(join(dir, 'd.pid'));
    await gone(pid);
    expect(job.reason).toBe('exit code 3'); // nothing left over to report
  });

  it('a line longer than the line limit is stored truncated with a marker; the next lines are intact', async () => {
    const job = await h.run(sh(`head -c 100000 /dev/zero | tr '\\0' y; echo; echo next`));
    const lines = (await h.log(job.id)).filter((r) => r.kind === 'stdout').map((r) => r.line!);
    expect(lines).toHaveLength(2);
    const m = /^(y+) …\[line truncated: (\d+) more bytes dropped\]$/.exec(lines[0])!;
    expect(m).not.toBeNull();
    expect(m[1].length + Number(m[2])).toBe(100_000);
    expect(Buffer.byteLength(lines[0])).toBeLessThanOrEqual(16 * 1024);
    expect(lines[1]).toBe('next');
  });
});

describe('per-job log cap', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await new Harness('jobs-cap', { logMaxBytes: 10_000, logLineMaxBytes: 1000 }).start();
  });
  afterAll(() => h.close());

  it('past the cap output is counted on the job, not stored', async () => {
    // 2000 lines of 100 bytes (+ newline): 202 000 bytes, 20x the cap.
    const job = await h.run({
      argv: [`i=0; while [ $i -lt 2000 ]; do printf '%0100d\\n' $i; i=$((i+1)); done`],
      shell: true,
    });
    expect(job.status).toBe('succeeded');
    const out = (await h.log(job.id)).filter((r) => r.kind !== 'status');
    const stored = out.filter((r) => r.kind === 'stdout');
    expect(stored.length).toBe(99); // 99 * 101 bytes fit in 10 000
    expect(out.at(-1)!.line).toContain('reached its cap of 10000 bytes');
    expect(job.reason).toBe('output over the log cap: 1901 lines (192001 bytes) counted, not stored');
    expect((await h.store.get(job.id))!.reason).toBe(job.reason);
  });
});
