import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { EnvelopeCodec, Keyspace } from '@coordbus/envelope';
import {
  cleanupNamespace,
  REPO_ROOT,
  ServiceProcess,
  startService,
  testKeyspace,
  testRedisUrl,
  waitFor,
} from '@coordbus/testing';
import { type JobMeta, JobStore } from '@coordbus/jobs';

/**
 * The job-coordinator as users run it: built replicas (`node dist/apps/job-coordinator/main.js`)
 * and the real `coordbus` CLI against a real Redis. Cancel across two replicas, a SIGKILLed
 * replica's job found crashed (by BullMQ stall detection, and by a reconcile at boot), hooks
 * files, follow. Run `npm run build` first.
 */
jest.setTimeout(180_000);

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('job-coordinator processes + coordbus jobs CLI', () => {
  let redis: Redis;
  let keyspace: Keyspace;
  let store: JobStore;
  let dir: string;
  const procs: ServiceProcess[] = [];

  const env = () => ({ REDIS_URL: testRedisUrl(), COORDBUS_NAMESPACE: keyspace.namespace });
  const replica = async (extra: NodeJS.ProcessEnv = {}) => {
    const svc = await startService(
      'job-coordinator',
      {
        ...env(),
        JOBS_CONCURRENCY: '1',
        JOBS_KILL_GRACE: '1s',
        JOBS_LOCK_DURATION: '2s',
        JOBS_STALLED_INTERVAL: '500ms',
        // Crash detection in these tests must come from the path each test is about.
        JOBS_RECONCILE_INTERVAL: '1h',
        JOBS_PRUNE_INTERVAL: '0',
        JOBS_SHUTDOWN_GRACE: '500ms',
        ...extra,
      },
      60_000,
    );
    procs.push(svc);
    await waitFor(
      () => svc.lines.some((l) => l.includes('job worker started')),
      'the job worker to start',
      30_000,
    );
    return svc;
  };

  const cli = (
    args: string[],
    opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
  ): Promise<CliResult> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'coordbus'), ...args], {
        cwd: opts.cwd ?? dir,
        env: { ...process.env, ...env(), ...opts.env },
      });
      // `hooks run` reads the agent's hook event from stdin, as Claude Code writes it.
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.input ?? '');
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.once('exit', (code) => resolve({ code, stdout, stderr }));
    });

  const submit = async (args: string[]): Promise<JobMeta> => {
    const r = await cli(['jobs', 'run', '--json', ...args]);
    expect(r).toMatchObject({ code: 0 });
    return JSON.parse(r.stdout) as JobMeta;
  };
  const waitJob = (
    id: string,
    pred: (j: JobMeta) => boolean,
    what: string,
    timeoutMs = 30_000,
  ): Promise<JobMeta> =>
    waitFor<JobMeta>(
      async () => {
        const j = await store.get(id);
        return (j && pred(j) ? j : undefined) as JobMeta;
      },
      what,
      timeoutMs,
    );
  const pidOf = (svc: ServiceProcess) => svc.child.pid!;
  const groupGone = (pgid: number) => {
    try {
      process.kill(-pgid, 0);
      return false;
    } catch {
      return true;
    }
  };

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
    keyspace = testKeyspace('jobs-e2e');
    store = new JobStore(redis, keyspace, new EnvelopeCodec());
    dir = mkdtempSync(join(tmpdir(), 'coordbus-jobs-e2e-'));
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await cleanupNamespace(redis, keyspace);
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  let a: ServiceProcess;
  let b: ServiceProcess;

  it('cancel reaches jobs running on two different replicas; the reply lists count and names', async () => {
    [a, b] = await Promise.all([replica(), replica()]);
    // Long enough to still run when a CLI started at load 30 (tens of seconds) cancels it.
    const j1 = await submit([
      '--hook',
      'SessionStart',
      '--tag',
      'long',
      '--name',
      'one',
      '--',
      'sleep',
      '300',
    ]);
    const j2 = await submit([
      '--hook',
      'SessionStart',
      '--tag',
      'long',
      '--name',
      'two',
      '--',
      'sleep',
      '300',
    ]);
    const [r1, r2] = await Promise.all([
      waitJob(j1.id, (j) => j.status === 'running' && !!j.pgid, 'job one running'),
      waitJob(j2.id, (j) => j.status === 'running' && !!j.pgid, 'job two running'),
    ]);
    // Concurrency 1 each: one job per replica.
    expect(new Set([r1.runner_pid, r2.runner_pid])).toEqual(new Set([pidOf(a), pidOf(b)]));

    const res = await cli(['jobs', 'cancel', '--tag', 'long', '--hook', 'SessionStart']);
    expect(res.code).toBe(0);
    // Following a cancelled job: exit 1 (it did not succeed), stdout only the records.
    const followed = await cli(['jobs', 'logs', j1.id, '--follow', '--json']);
    expect(followed.code).toBe(1);
    expect(JSON.parse(followed.stdout.trim().split('\n').at(-1)!)).toMatchObject({
      kind: 'status',
      status: 'cancelled',
    });
    expect(followed.stderr).toContain(`coordbus: job ${j1.id} cancelled`);
    expect(res.stdout).toMatch(/^cancelled 2 job\(s\): /);
    expect(res.stdout).toContain(`one (${j1.id})`);
    expect(res.stdout).toContain(`two (${j2.id})`);
    for (const j of [j1, j2]) {
      const final = (await store.get(j.id))!;
      expect(final.status).toBe('cancelled');
      await waitFor(() => groupGone(final.pgid!), 'the job group to be gone');
    }
    const again = await cli(['jobs', 'cancel', '--tag', 'long']);
    expect(again.code).toBe(6); // NoMatch
    expect(again.stderr).toContain('NoMatch');
  });

  it('SIGKILL of the replica running a job: stall detection on the other replica marks it crashed, never re-run; logs --follow ends with a message', async () => {
    const job = await submit([
      '--hook',
      'Stop',
      '--name',
      'victim',
      '--',
      'sh',
      '-c',
      'echo started; sleep 30',
    ]);
    const running = await waitJob(job.id, (j) => j.status === 'running' && !!j.pgid, 'victim running');
    const follow = cli(['jobs', 'logs', job.id, '--follow']);
    await waitFor(async () => (await store.connection.xlen(store.keys.log(job.id))) >= 3, 'output');
    const [victim, survivor] = running.runner_pid === pidOf(a) ? [a, b] : [b, a];
    await victim.stop('SIGKILL');

    const crashed = await waitJob(job.id, (j) => j.status === 'crashed', 'crashed', 60_000);
    // Two detectors race, both correct: the survivor's stall detection, and the follower on this
    // host seeing the runner's process gone. Whichever wins, the job is crashed once, never re-run.
    expect(crashed.reason).toMatch(/stall|its runner is gone/);
    await waitFor(() => groupGone(running.pgid!), 'the orphaned group to be killed');
    const f = await follow;
    expect(f.code).toBe(1); // the job did not succeed
    expect(f.stdout).toContain('started');
    expect(f.stderr).toMatch(
      /coordbus: job crashed: (its coordinator replica stopped answering|its runner is gone)/,
    );
    // Not re-run behind the user's back: still exactly one start, on the dead replica.
    const statuses = (await cli(['jobs', 'logs', job.id, '--status', '--json'])).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).status);
    expect(statuses).toEqual(['queued', 'running', 'crashed']);
    const ls = JSON.parse((await cli(['jobs', 'ls', '--status', 'crashed', '--json'])).stdout) as JobMeta[];
    expect(ls.map((j) => j.id)).toContain(job.id);
    b = survivor;
  });

  it('a replica booting on the same host reconciles what a SIGKILLed one left running', async () => {
    const job = await submit(['--name', 'orphan', '--', 'sleep', '30']);
    const running = await waitJob(job.id, (j) => j.status === 'running' && !!j.pgid, 'orphan running');
    await b.stop('SIGKILL');
    expect(groupGone(running.pgid!)).toBe(false); // the job outlived its replica
    // A slow lock so BullMQ stall detection cannot be what finds it.
    b = await replica({ JOBS_LOCK_DURATION: '60s' });
    const crashed = await waitJob(job.id, (j) => j.status === 'crashed', 'crashed at boot', 10_000);
    expect(crashed.reason).toMatch(/died while it ran.*orphaned process group \d+ was killed/);
    await waitFor(() => groupGone(running.pgid!), 'the orphaned group to be killed');
  });

  it('a cancel the running replica cannot carry out in time is KillFailed; it is not lost, and completes once the replica answers', async () => {
    const job = await submit(['--name', 'frozen', '--', 'sleep', '30']);
    const running = await waitJob(job.id, (j) => j.status === 'running' && !!j.pgid, 'frozen running');
    expect(running.runner_pid).toBe(pidOf(b));
    b.child.kill('SIGSTOP');
    try {
      const res = await cli(['jobs', 'cancel', job.id]);
      expect(res.code).toBe(9);
      expect(res.stderr).toContain(`KillFailed: still running after the kill grace: frozen (${job.id})`);
      expect((await store.get(job.id))!.status).toBe('cancelling');
    } finally {
      b.child.kill('SIGCONT');
    }
    // The replica re-reads the status of its jobs: the missed pub/sub message does not matter.
    const done = await waitJob(job.id, (j) => j.status === 'cancelled', 'cancelled after SIGCONT');
    await waitFor(() => groupGone(done.pgid!), 'the group to be gone');
  });

  it('hooks run: one invocation, skip/only conditions recorded as skipped, foreground inline, background queued', async () => {
    const project = join(dir, 'project');
    mkdirSync(join(project, '.coordbus'), { recursive: true });
    mkdirSync(join(project, '.git'), { recursive: true });
    writeFileSync(join(project, '.git', 'HEAD'), 'ref: refs/heads/feature/login\n');
    writeFileSync(join(project, 'marker.txt'), 'x');
    writeFileSync(
      join(project, '.coordbus', 'hooks.yml'),
      `SessionStart:
  - name: fg
    run: [sh, -c, 'echo fg-out; echo $GREETING']
    env: { GREETING: hello }
    only: { branch: 'feature/*' }
  - name: bg
    run: echo bg-out && pwd
    shell: true
    background: true
    tags: [bg]
    only: { file_exists: marker.txt }
  - name: not-in-ci
    run: [true]
    skip: { env: FAKE_CI }
  - name: main-only
    run: [true]
    only: { branch: main }
hooks:
  Stop:
    - name: unused
      run: [true]
`,
    );
    const sub = join(project, 'sub');
    mkdirSync(sub);
    const r = await cli(['hooks', 'run', 'SessionStart', '--json'], {
      cwd: sub,
      env: { FAKE_CI: '1', COORD_SESSION_ID: 'sess-1' },
    });
    expect(r.code).toBe(0);
    const rows = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as JobMeta);
    const by = Object.fromEntries(rows.map((j) => [j.name, j]));
    expect(new Set(rows.map((j) => j.invocation_id)).size).toBe(1);
    expect(by['not-in-ci']).toMatchObject({
      status: 'skipped',
      reason: 'skip: env FAKE_CI is set',
      hook: 'SessionStart',
      worktree: project,
    });
    expect(by['main-only']).toMatchObject({
      status: 'skipped',
      reason: 'only: branch feature/login does not match main',
    });
    expect(by.fg).toMatchObject({ status: 'succeeded', background: false });
    expect(by.bg).toMatchObject({ status: 'queued', background: true, tags: ['bg', 'session:sess-1'] });
    const bg = await waitJob(by.bg.id, (j) => j.status === 'succeeded', 'background job done');
    expect(bg.cwd).toBe(project);
    const logs = await cli(['jobs', 'logs', by.fg.id, '--stdout', '--json']);
    expect(
      logs.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).line),
    ).toEqual(['fg-out', 'hello']);
    const bgLogs = await cli(['jobs', 'logs', bg.id, '--stdout']);
    expect(bgLogs.stdout).toBe(`bg-out\n${project}\n`);
    const ls = JSON.parse(
      (await cli(['jobs', 'ls', '--inv', rows[0].invocation_id.slice(0, 16), '--json'])).stdout,
    ) as JobMeta[];
    expect(ls).toHaveLength(4);
    for (const key of [
      'id',
      'name',
      'hook',
      'worktree',
      'tags',
      'invocation_id',
      'status',
      'exit_code',
      'created_at',
      'started_at',
      'finished_at',
    ]) {
      expect(ls[0]).toHaveProperty(key);
    }

    // A hook the file does not define, and a directory without a hooks file: silent success.
    expect(await cli(['hooks', 'run', 'PreCompact'], { cwd: project })).toMatchObject({
      code: 0,
      stdout: '',
      stderr: '',
    });
    expect(await cli(['hooks', 'run', 'SessionStart'], { cwd: tmpdir() })).toMatchObject({
      code: 0,
      stdout: '',
    });
    // A broken file is an Invalid error naming the problem.
    writeFileSync(
      join(project, '.coordbus', 'hooks.yml'),
      'hooks:\n  Stop:\n    - name: x\n      run: echo hi\n',
    );
    const bad = await cli(['hooks', 'run', 'Stop'], { cwd: project });
    expect(bad.code).toBe(7);
    expect(bad.stderr).toContain('needs `shell: true`');
  });

  it('jobs CLI: foreground exit codes, follow a background job to the end, usage and typed errors', async () => {
    const fg = await cli([
      'jobs',
      'run',
      '--foreground',
      '--name',
      'five',
      '--',
      'sh',
      '-c',
      'echo visible; exit 5',
    ]);
    expect(fg.code).toBe(5);
    expect(fg.stdout).toBe('visible\n');
    expect(fg.stderr).toMatch(/job \w+ failed: exit code 5/);

    const job = await submit([
      '--sample-every',
      '2',
      '--',
      'sh',
      '-c',
      'for i in 1 2 3 4 5 6; do echo n$i; sleep 0.1; done',
    ]);
    const follow = await cli(['jobs', 'logs', job.id.slice(0, 20), '--follow', '--json']);
    expect(follow.code).toBe(0);
    const recs = follow.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; kind: string; line?: string; status?: string });
    expect(recs.at(-1)).toMatchObject({ kind: 'status', status: 'succeeded' });
    expect(recs.filter((r) => r.kind === 'stdout').map((r) => r.seq)).toEqual([4, 6, 8]);
    const human = await cli(['jobs', 'logs', job.id]);
    expect(human.stderr).toContain('[... 1 record(s) sampled out]');

    const timedOut = await cli(['jobs', 'run', '--foreground', '--timeout', '300ms', '--', 'sleep', '10']);
    expect(timedOut.stderr).toMatch(/timed-out/);
    expect(timedOut.code).toBe(128 + 15);

    expect((await cli(['jobs', 'cancel'])).code).toBe(2);
    expect((await cli(['jobs', 'cancel', '--inv', 'ZZZZ'])).code).toBe(6);
    expect((await cli(['jobs', 'logs', 'NOPE'])).code).toBe(4);
    expect((await cli(['jobs', 'ls', '--status', 'bogus'])).code).toBe(2);
    expect((await cli(['jobs', 'run', '--timeout', 'soon', '--', 'true'])).code).toBe(2);

    const prune = await cli([
      'jobs',
      'prune',
      '--dry-run',
      '--retention',
      '1ms',
      '--keep-last',
      '0',
      '--json',
    ]);
    expect(prune.code).toBe(0);
    const decision = JSON.parse(prune.stdout) as { evict: { id: string }[]; evicted: string[] };
    expect(decision.evict.map((e) => e.id)).toContain(job.id);
    expect(decision.evicted).toEqual([]);
    const real = JSON.parse(
      (await cli(['jobs', 'prune', '--retention', '1ms', '--keep-last', '0', '--json'])).stdout,
    ) as { evicted: string[] };
    expect(real.evicted).toContain(job.id);
    expect(await redis.exists(store.keys.job(job.id), store.keys.log(job.id))).toBe(0);
  });

  it('jobs logs --follow exits 1 when the job did not succeed (failed, timed-out), 0 without --follow; --help says so', async () => {
    // --follow of a job that fails exits 1 (not the job's own 5: that reads as "Redis
    // unavailable"), and says why on stderr even when only stdout records are shown.
    const failing = await submit(['--', 'sh', '-c', 'echo before; sleep 0.3; echo oops >&2; exit 5']);
    const followFail = await cli(['jobs', 'logs', failing.id, '--follow', '--stdout']);
    expect(followFail).toMatchObject({ code: 1, stdout: 'before\n' });
    expect(followFail.stderr).toBe(`coordbus: job ${failing.id} failed: exit code 5\n`);
    // Without --follow it is a read of the log: exit 0 whatever the job did.
    const readFailed = await cli(['jobs', 'logs', failing.id]);
    expect(readFailed.code).toBe(0);
    expect(readFailed.stdout).toBe('before\n');
    expect(readFailed.stderr).toMatch(/oops\n.*\] failed exit 5/s);
    // The mapping is documented where users look for it.
    const help = await cli(['jobs', 'logs', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(
      /exit status:\n\s+--follow\s+0 the job succeeded \(or was skipped\); 1 it did not succeed/,
    );
    // A job stopped by its --timeout did not succeed either.
    const slow = await submit(['--timeout', '300ms', '--', 'sleep', '10']);
    const followSlow = await cli(['jobs', 'logs', slow.id, '--follow']);
    expect(followSlow.code).toBe(1);
    expect(followSlow.stderr).toMatch(/\] timed-out\b.*\ncoordbus: job \w+ timed-out/s);
  });

  it('SIGTERM: the replica stops taking jobs, cancels what still runs after the shutdown grace, and exits 0', async () => {
    const job = await submit(['--name', 'long', '--', 'sleep', '30']);
    const running = await waitJob(job.id, (j) => j.status === 'running' && !!j.pgid, 'long running');
    expect(await b.stop('SIGTERM')).toBe(0);
    const final = (await store.get(job.id))!;
    expect(final).toMatchObject({ status: 'cancelled' });
    await waitFor(() => groupGone(running.pgid!), 'the group to be gone');
  });
});
