import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newUlid } from '@coordbus/envelope';
import { processRunning, waitFor } from '@coordbus/testing';
import { RunningProcess } from '../src/exec/process-runner';
import { NativeSpawner, spawnAddonPath } from '../src/exec/native-spawner';
import {
  HelperSpawner,
  InProcessSpawner,
  spawnerMain,
  type SpawnRequest,
  type Spawner,
} from '../src/exec/spawner';
import { cancelJobs } from '../src/ops/cancel';
import { newJob } from '../src/queue/submit';
import { Harness } from './harness';

/** A process run straight through `spawner`, with no job records: how it ends, and what it printed. */
function runThrough(spawner: Spawner, argv: string[], shell = false) {
  const lines: string[] = [];
  const proc = new RunningProcess({
    argv,
    shell,
    cwd: process.cwd(),
    env: { PATH: process.env.PATH },
    timeoutMs: null,
    killGraceMs: 300,
    lineMaxBytes: 1000,
    onLine: (_kind, line) => lines.push(line),
    spawner,
  });
  return { proc, lines };
}

/** Jobs forked by the replica's spawner helper process leave the same records as jobs forked here. */
describe('jobs through the spawner helper', () => {
  let h: Harness;
  const warnings: string[] = [];
  beforeAll(async () => {
    h = await new Harness('jobs-spawner', {
      spawner: 'helper',
      killGraceMs: 300,
      onWarn: (msg) => warnings.push(msg),
    }).start();
  });
  afterAll(() => h.close());

  const alive = processRunning;

  it('output, stdin, exit code and environment arrive as from an in-process spawn', async () => {
    const job = await h.run({
      argv: ['cat; echo "[$COORDBUS_JOB_NAME:$HOME_SET]"; echo oops >&2; exit 4'],
      shell: true,
      stdin: 'from stdin\n',
      name: 'spawned',
      env: { HOME_SET: 'yes' },
    });
    expect(job.status).toBe('failed');
    expect(job.exit_code).toBe(4);
    const log = await h.log(job.id);
    expect(log.filter((r) => r.kind === 'stdout').map((r) => r.line)).toEqual([
      'from stdin',
      '[spawned:yes]',
    ]);
    expect(log.filter((r) => r.kind === 'stderr').map((r) => r.line)).toEqual(['oops']);
    expect(log.filter((r) => r.kind === 'status').map((r) => r.status)).toEqual([
      'queued',
      'running',
      'failed',
    ]);
    // The pid recorded is the job's own (it led its group), not the helper's.
    expect(job.pgid).not.toBe(h.spawner!.pid);
    // The helper holds none of the runner's environment (a job could read its /proc environ).
    const environ = readFileSync(`/proc/${h.spawner!.pid}/environ`, 'utf8').split('\0').filter(Boolean);
    expect(environ.map((v) => v.slice(0, v.indexOf('='))).sort()).toEqual([
      'NODE_CHANNEL_FD',
      'NODE_CHANNEL_SERIALIZATION_MODE',
    ]);
  });

  it('a command that does not exist fails with 127 and the helper stays', async () => {
    const pid = h.spawner!.pid;
    const job = await h.run({ argv: ['/nonexistent/command'] });
    expect(job.status).toBe('failed');
    expect(job.exit_code).toBe(127);
    expect(h.spawner!.pid).toBe(pid);
  });

  it('the helper dying ends its running jobs crashed (their groups swept); the next job gets a new helper', async () => {
    const { meta, secrets } = newJob(h.request({ argv: ['sleep', '300'] }), newUlid());
    await h.submitter.recordForeground(meta);
    const running = h.executor.execute(meta.id, { secrets });
    const started = await h
      .waitStatus(meta.id, () => true, 'pid recorded')
      .then(() => waitFor(async () => (await h.store.get(meta.id))?.pgid ?? 0, 'job pid'));
    const helper = h.spawner!.pid!;
    process.kill(helper, 'SIGKILL');
    const final = await running;
    expect(final!.status).toBe('crashed');
    expect(final!.reason).toMatch(/spawner process \(its parent\) ended \(killed by SIGKILL\)/);
    // The orphaned job was swept with its group (though nothing else was created since its spawn,
    // it never exited: the no-process-created shortcut must not apply).
    await waitFor(() => !alive(started), `pid ${started} to be gone`, 5000);
    expect(warnings).toContain('job spawner process ended');

    const next = await h.run({ argv: ['true'] });
    expect(next.status).toBe('succeeded');
    expect(h.spawner!.pid).not.toBe(helper);
  }, 15_000);
});

/** A replica's jobs started by the spawn addon leave the same records as forked ones. */
describe('jobs through the spawn addon (executor)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await new Harness('jobs-native', { spawner: 'native', killGraceMs: 300 }).start();
  });
  afterAll(() => h.close());

  it('output, stdin, exit code, environment and status records', async () => {
    const job = await h.run({
      argv: ['cat; echo "[$COORDBUS_JOB_NAME:$HOME_SET]"; echo oops >&2; exit 4'],
      shell: true,
      stdin: 'from stdin\n',
      name: 'native',
      env: { HOME_SET: 'yes' },
    });
    expect(job).toMatchObject({ status: 'failed', exit_code: 4 });
    const log = await h.log(job.id);
    expect(log.filter((r) => r.kind === 'stdout').map((r) => r.line)).toEqual(['from stdin', '[native:yes]']);
    expect(log.filter((r) => r.kind === 'stderr').map((r) => r.line)).toEqual(['oops']);
    expect(log.filter((r) => r.kind === 'status').map((r) => r.status)).toEqual([
      'queued',
      'running',
      'failed',
    ]);
    expect(job.pgid).not.toBe(process.pid);
  });

  it('a command that does not exist fails to start (ENOENT, exit 127)', async () => {
    const job = await h.run({ argv: ['/nonexistent/command'] });
    expect(job).toMatchObject({ status: 'failed', exit_code: 127, reason: 'could not start: ENOENT' });
  });

  it('cancel ends the job and everything it started', async () => {
    const { meta, secrets } = newJob(
      h.request({ argv: ['sleep 300 & sleep 300; wait'], shell: true }),
      newUlid(),
    );
    await h.submitter.recordForeground(meta);
    const running = h.executor.execute(meta.id, { secrets });
    const pgid = await waitFor(async () => (await h.store.get(meta.id))?.pgid ?? 0, 'job pid');
    await cancelJobs(h.store, h.queue, { jobId: meta.id, filter: {} });
    const final = await running;
    expect(final!.status).toBe('cancelled');
    await waitFor(() => !processRunning(pgid), `pid ${pgid} to be gone`, 5000);
  });
});

describe('a spawner helper that never becomes ready', () => {
  it('is ended after the start timeout and its queued job runs in the next one', async () => {
    const warnings: string[] = [];
    const spawner = new HelperSpawner({ onWarn: (msg) => warnings.push(msg), startTimeoutMs: 300 });
    const { proc, lines } = runThrough(spawner, ['echo', 'ran']);
    // Frozen before it could read its program: it never says it is ready.
    const stuck = spawner.pid!;
    process.kill(stuck, 'SIGSTOP');
    const end = await proc.done;
    expect(end).toMatchObject({ exitCode: 0, signal: null });
    expect(lines).toEqual(['ran']);
    expect(warnings).toContain('job spawner process ended');
    expect(spawner.pid).not.toBe(stuck);
    spawner.close();
  });
});

/** The niceness field of /proc/<pid>/stat (after the parenthesised command name). */
const niceOf = (pid: number | 'self') =>
  Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[16]);

describe('job niceness (JOBS_NICE)', () => {
  /** What a job reads as its own niceness, forked by `spawner`. */
  const jobNice = async (spawner: Spawner) => {
    // cut(1) prints the niceness field of its own stat (comm "cut" has no space to shift it),
    // forked by the job's shell a moment after the start: a renice from outside is in by then.
    const { proc, lines } = runThrough(spawner, ["sleep 0.1; cut -d ' ' -f 19 /proc/self/stat"], true);
    expect(await proc.done).toMatchObject({ exitCode: 0 });
    return Number(lines[0]);
  };

  it('the helper runs niced and so does every job it forks; this process keeps its own', async () => {
    const own = niceOf('self');
    const spawner = new HelperSpawner({ nice: 7 });
    try {
      expect(await spawner.start()).toBe(true);
      expect(niceOf(spawner.pid!)).toBe(7);
      expect(await jobNice(spawner)).toBe(7);
      expect(niceOf('self')).toBe(own);
    } finally {
      spawner.close();
    }
  });

  it('by default (0) jobs run at the niceness of the process that asked for them', async () => {
    const spawner = new HelperSpawner();
    try {
      expect(await jobNice(spawner)).toBe(niceOf('self'));
    } finally {
      spawner.close();
    }
  });

  it('the in-process fallback nices the job it forked', async () => {
    expect(await jobNice(new InProcessSpawner(5))).toBe(5);
  });

  it('never raises a job above a replica that already runs nicer', async () => {
    // The helper program as a replica starts it, but from a process at niceness 15, asked for 10.
    const helper = spawn('nice', ['-n', '15', process.execPath, '-', '10'], {
      stdio: ['pipe', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    try {
      const ready = new Promise<unknown>((resolve) => helper.once('message', resolve));
      helper.stdin!.end(`(${spawnerMain.toString()})();\n`);
      expect(await ready).toMatchObject({ t: 'ready' });
      expect(niceOf(helper.pid!)).toBe(15);
    } finally {
      helper.kill('SIGKILL');
    }
  });

  it('refuses a niceness outside 0-19, naming the variable', () => {
    expect(() => new HelperSpawner({ nice: 20 })).toThrow(/JOBS_NICE/);
    expect(() => new HelperSpawner({ nice: -1 })).toThrow(RangeError);
  });
});

/** What one process started through `spawner` did: its output and how it ended, or why it never started. */
function probe(spawner: Spawner, req: Partial<SpawnRequest> & { file: string }) {
  return new Promise<{
    pid?: number;
    stdout: string;
    stderr: string;
    code?: number | null;
    signal?: string | null;
    failed?: string;
  }>((resolve) => {
    const out = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    let pid: number | undefined;
    let exit: { code: number | null; signal: string | null } | undefined;
    let open = 2;
    const text = () => ({
      stdout: Buffer.concat(out.stdout).toString(),
      stderr: Buffer.concat(out.stderr).toString(),
    });
    const settle = () => exit && open === 0 && resolve({ pid, ...text(), ...exit });
    spawner.spawn(
      { args: [], cwd: process.cwd(), env: { PATH: process.env.PATH }, stdin: null, ...req },
      {
        started: (info) => (pid = info.pid),
        failed: (code) => resolve({ ...text(), failed: code }),
        error: () => undefined,
        data: (kind, chunk) => out[kind].push(chunk),
        end: () => {
          open--;
          settle();
        },
        exit: (code, signal) => {
          exit = { code, signal };
          settle();
        },
      },
    );
  });
}

/** stat fields after the command name: state, ppid, pgrp, session. */
const statOf = (text: string) => text.split(') ')[1].split(' ').slice(0, 4);

/** The spawn addon built, or the reason the test fails (the build compiles it with cc). */
function native(nice?: number): NativeSpawner {
  const spawner = NativeSpawner.open({ nice });
  if (!(spawner instanceof NativeSpawner)) throw new Error(spawner.unavailable);
  return spawner;
}

/** A replica starts jobs with the spawn addon (libs/jobs/native): as child_process did, without a fork. */
describe('jobs started by the spawn addon', () => {
  const addon = native();
  const forked = new HelperSpawner();
  const dir = mkdtempSync(join(tmpdir(), 'coordbus-spawn-'));
  beforeAll(async () => {
    expect(await forked.start()).toBe(true);
    writeFileSync(join(dir, 'hello'), '#!/bin/sh\necho "hello $1"\n');
    chmodSync(join(dir, 'hello'), 0o755);
    writeFileSync(join(dir, 'not-executable'), '#!/bin/sh\necho ran\n');
    writeFileSync(join(dir, 'no-shebang'), 'echo "no #! line: $0 $1"\n');
    chmodSync(join(dir, 'no-shebang'), 0o755);
  });
  afterAll(() => {
    forked.close();
    addon.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the build made the addon', () => {
    expect(spawnAddonPath()).toMatch(/coordbus_spawn\.node$/);
    expect(NativeSpawner.open({ addon: join(dir, 'hello') })).toEqual({
      unavailable: expect.stringContaining('did not load'),
    });
  });

  it('a job leads its own session and process group, a child of the process that started it', async () => {
    for (const [spawner, parent] of [
      [addon, process.pid],
      [forked, forked.pid],
    ] as const) {
      const job = await probe(spawner, { file: 'cat', args: ['/proc/self/stat'] });
      expect(job.code).toBe(0);
      const [, ppid, pgrp, session] = statOf(job.stdout).map(Number);
      expect({ ppid, pgrp, session }).toEqual({ ppid: parent, pgrp: job.pid, session: job.pid });
    }
  });

  it('a job starts with every signal at its default and none blocked (this process ignores SIGPIPE)', async () => {
    const ownIgnored = readFileSync('/proc/self/status', 'utf8').match(/^SigIgn:\s*(\w+)/m)![1];
    expect(ownIgnored).not.toBe('0000000000000000');
    for (const spawner of [addon, forked]) {
      const job = await probe(spawner, { file: 'cat', args: ['/proc/self/status'] });
      const mask = (name: string) => job.stdout.match(new RegExp(`^${name}:\\s*(\\w+)`, 'm'))![1];
      expect({ blocked: mask('SigBlk'), ignored: mask('SigIgn') }).toEqual({
        blocked: '0000000000000000',
        ignored: '0000000000000000',
      });
    }
  });

  it('cwd, environment, stdin, PATH lookup, exit codes, signals and start errors are those of child_process', async () => {
    const cases: (Partial<SpawnRequest> & { file: string })[] = [
      {
        file: '/bin/sh',
        args: ['-c', 'pwd; env | grep -v ^PWD= | sort; cat; exit 3'],
        cwd: dir,
        env: { PATH: '/usr/bin:/bin', A: '1', B: 'two words', UNSET: undefined },
        stdin: 'from stdin\n',
      },
      { file: '/bin/sh', args: ['-c', 'echo out; echo err >&2; kill -TERM $$'] },
      { file: 'hello', args: ['world'], env: { PATH: `/nonexistent:${dir}` } },
      { file: 'true', env: {} },
      { file: 'no-shebang', args: ['arg'], env: { PATH: dir } },
      { file: 'no-such-command-anywhere' },
      { file: 'not-executable', env: { PATH: dir } },
      { file: '/bin/true', cwd: join(dir, 'missing') },
      { file: '/bin/echo', args: ['a\u0000b'] },
    ];
    const results = [];
    for (const req of cases) {
      const [viaAddon, viaFork] = [await probe(addon, req), await probe(forked, req)];
      delete viaAddon.pid;
      delete viaFork.pid;
      expect(viaAddon).toEqual(viaFork);
      results.push(viaAddon);
    }
    expect(results[0]).toMatchObject({ code: 3, signal: null, stderr: '' });
    expect(results[0].stdout).toBe(`${dir}\nA=1\nB=two words\nPATH=/usr/bin:/bin\nfrom stdin\n`);
    expect(results[1]).toEqual({ stdout: 'out\n', stderr: 'err\n', code: null, signal: 'SIGTERM' });
    expect(results[2]).toMatchObject({ stdout: 'hello world\n', code: 0 });
    expect(results[3]).toMatchObject({ code: 0 });
    expect(results[4]).toMatchObject({ stdout: `no #! line: ${join(dir, 'no-shebang')} arg\n`, code: 0 });
    expect(results.slice(5).map((r) => r.failed)).toEqual([
      'ENOENT',
      'EACCES',
      'ENOENT',
      'ERR_INVALID_ARG_VALUE',
    ]);
  });

  it('many jobs ending together each get their own exit status, and every one is reaped', async () => {
    const codes = Array.from({ length: 40 }, (_, i) => i % 7);
    const jobs = await Promise.all(
      codes.map((code) => probe(addon, { file: '/bin/sh', args: ['-c', `exit ${code}`] })),
    );
    expect(jobs.map((j) => j.code)).toEqual(codes);
    // Reaped: not even a zombie is left of any of them.
    expect(jobs.filter((j) => existsSync(`/proc/${j.pid}`))).toEqual([]);
  });

  it('a job whose exit status another waiter in this process took still ends, as lost', async () => {
    const raw = require(spawnAddonPath()!) as { reap(pid: number): unknown };
    let lost: string | undefined;
    const exited = new Promise<void>((resolve) =>
      addon.spawn(
        { file: '/bin/true', args: [], cwd: dir, env: {}, stdin: null },
        {
          started: ({ pid }) => {
            // Reaped here first, synchronously: the spawner's own reap can only come after.
            while (raw.reap(pid) === null);
          },
          failed: () => undefined,
          error: () => undefined,
          data: () => undefined,
          end: () => undefined,
          exit: (_code, _signal, why) => {
            lost = why;
            resolve();
          },
        },
      ),
    );
    await exited;
    expect(lost).toMatch(/taken by another waiter in this process \(ECHILD\)/);
  });

  it('a job is given the niceness before its exec, never a higher priority than it would have', async () => {
    const own = niceOf('self');
    const at = async (spawner: Spawner) =>
      Number(
        (await probe(spawner, { file: 'cut', args: ['-d', ' ', '-f', '19', '/proc/self/stat'] })).stdout,
      );
    expect(await at(native(7))).toBe(Math.max(7, own));
    expect(await at(native(0))).toBe(own);
    expect(niceOf('self')).toBe(own);
    expect(() => native(20)).toThrow(/JOBS_NICE/);
  });
});
