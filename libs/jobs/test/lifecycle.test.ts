import { spawn } from 'node:child_process';
import { JOB_STATUSES, JobStatus, TERMINAL_JOB_STATUSES } from '@coordbus/envelope';
import { COMMANDS } from '../src/commands';
import { waitFor } from '@coordbus/testing';
import { processStartTime } from '../src/exec/proc';
import { SCRUBBED } from '../src/domain/env-scrub';
import { eventIdentity } from '../src/domain/job';
import { createJobQueue } from '../src/queue/bull';
import { JobSubmitter, newJob } from '../src/queue/submit';
import { cancelJobs } from '../src/ops/cancel';
import { reconcileHost } from '../src/ops/reconcile';
import { crashJob } from '../src/ops/liveness';
import { deadPid, Harness } from './harness';

/** Every job status reached for real, with exactly one terminal status record each. */
describe('job lifecycle', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await new Harness('jobs-life').start();
  });
  afterAll(() => h.close());

  const terminalRecords = async (id: string) =>
    (await h.statusRecords(id)).filter((s) => (TERMINAL_JOB_STATUSES as readonly string[]).includes(s));

  it('queued -> running -> succeeded, with output records in order', async () => {
    const job = await h.run({ argv: ['sh', '-c', 'echo one; echo two >&2; echo three'] });
    expect(job).toMatchObject({ status: 'succeeded', exit_code: 0, signal: null });
    expect(job.started_at).not.toBeNull();
    expect(job.finished_at).not.toBeNull();
    const log = await h.log(job.id);
    expect(log.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(log.map((r) => (r.kind === 'status' ? r.status : `${r.kind}:${r.line}`))).toEqual([
      'queued',
      'running',
      'stdout:one',
      expect.stringMatching(/^std(err:two|out:three)$/),
      expect.stringMatching(/^std(err:two|out:three)$/),
      'succeeded',
    ]);
  });

  it('failed keeps the exit code', async () => {
    const job = await h.run({ argv: ['sh', '-c', 'exit 3'] });
    expect(job).toMatchObject({ status: 'failed', exit_code: 3 });
    expect(await terminalRecords(job.id)).toEqual(['failed']);
  });

  it('a program that does not exist fails with 127', async () => {
    const job = await h.run({ argv: ['/nonexistent/program'] });
    expect(job).toMatchObject({ status: 'failed', exit_code: 127, reason: 'could not start: ENOENT' });
  });

  it('signaled names the signal', async () => {
    const job = await h.run({ argv: ['sh', '-c', 'kill -SEGV $$'] });
    expect(job).toMatchObject({ status: 'signaled', signal: 'SIGSEGV', exit_code: null });
  });

  it('timed-out: SIGTERM to the group at the timeout, SIGKILL after the grace', async () => {
    const t0 = Date.now();
    // The shell ignores TERM, so only the SIGKILL after the grace ends it; its child sleeps too.
    const job = await h.run({
      argv: ['sh', '-c', "trap '' TERM; sleep 30 & sleep 30; wait"],
      timeout_ms: 300,
    });
    expect(job.status).toBe('timed-out');
    expect(job.signal).toBe('SIGKILL');
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await terminalRecords(job.id)).toEqual(['timed-out']);
  });

  it('cancel of a running job: cancelling, then cancelled (the whole group is killed)', async () => {
    const { meta, secrets } = newJob(
      h.request({ argv: ['sh', '-c', "trap '' TERM; sleep 30 & echo started; wait"], tags: ['slow'] }),
      'INV1',
    );
    await h.submitter.recordForeground(meta);
    let pgid = 0;
    const running = h.executor.execute(meta.id, { secrets, onStarted: (m) => (pgid = m.pgid!) });
    await waitFor(async () => (await h.log(meta.id)).some((r) => r.line === 'started'), 'job output');
    const cancelling = cancelJobs(h.store, h.queue, { jobId: meta.id, filter: {} });
    await h.waitStatus(meta.id, (s) => s === 'cancelling', 'cancelling');
    const res = await cancelling;
    expect(res.cancelled.map((j) => j.id)).toEqual([meta.id]);
    const final = await running;
    expect(final).toMatchObject({ status: 'cancelled', signal: 'SIGKILL' });
    // Nothing of the group survives (killed members may linger a moment as zombies until reaped).
    await waitFor(() => {
      try {
        process.kill(-pgid, 0);
        return false;
      } catch {
        return true;
      }
    }, 'the process group to be gone');
    expect(await h.statusRecords(meta.id)).toEqual(['queued', 'running', 'cancelling', 'cancelled']);
  });

  it('cancel of a queued job removes it: it is never started', async () => {
    const job = await h.queued();
    await cancelJobs(h.store, h.queue, { jobId: job.id, filter: {} });
    const after = await h.executor.execute(job.id);
    expect(after).toMatchObject({ status: 'cancelled', started_at: null, reason: 'cancelled while queued' });
    expect(await h.statusRecords(job.id)).toEqual(['queued', 'cancelled']);
  });

  it('skipped jobs are recorded with their reason', async () => {
    const { meta } = newJob(h.request(), 'INV2');
    const job = await h.submitter.recordSkipped(meta, 'skip: env CI is set');
    const stored = await h.store.get(job.id);
    expect(stored).toMatchObject({ status: 'skipped', reason: 'skip: env CI is set', started_at: null });
    expect(await h.log(job.id)).toEqual([
      expect.objectContaining({ seq: 1, kind: 'status', status: 'skipped', reason: 'skip: env CI is set' }),
    ]);
  });

  it('crashed: reconcile marks a job whose runner died and kills its orphaned group', async () => {
    const job = await h.queued();
    // A process group left behind by a runner that no longer exists.
    const orphan = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    const claim = await h.store.transition(job.id, {
      from: ['queued'],
      to: 'running',
      fields: {
        host: h.runner.host,
        runner_id: 'replica:dead',
        runner_pid: deadPid(),
        started_at: new Date().toISOString(),
        pgid: orphan.pid!,
        proc_start: processStartTime(orphan.pid!),
      },
      procs: { host: h.runner.host, op: 'add' },
      event: job,
    });
    expect(claim.ok).toBe(true);
    const exited = new Promise((r) => orphan.once('exit', r));
    const res = await reconcileHost(h.store, h.runner);
    expect(res.crashed).toContain(job.id);
    await exited;
    const after = await h.store.get(job.id);
    expect(after!.status).toBe('crashed');
    expect(after!.reason).toMatch(/died while it ran.*orphaned process group \d+ was killed/);
    expect(await h.statusRecords(job.id)).toEqual(['queued', 'crashed']);
    expect(await h.store.procsOf(h.runner.host)).not.toContain(job.id);
  });

  it('a job marked crashed from another host keeps its process group listed until its own host reaps it', async () => {
    const job = await h.queued();
    const orphan = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    await h.store.transition(job.id, {
      from: ['queued'],
      to: 'running',
      fields: {
        host: h.runner.host,
        runner_id: 'replica:dead2',
        runner_pid: deadPid(),
        started_at: new Date().toISOString(),
        pgid: orphan.pid!,
        proc_start: processStartTime(orphan.pid!),
      },
      procs: { host: h.runner.host, op: 'add' },
    });
    // Another host's replica (BullMQ stall detection) marks it crashed; it cannot touch our processes.
    expect(await crashJob(h.store, (await h.store.get(job.id))!, 'stalled', 'another-host')).toBe(true);
    expect(await h.store.procsOf(h.runner.host)).toContain(job.id);
    expect(() => process.kill(orphan.pid!, 0)).not.toThrow();
    const exited = new Promise((r) => orphan.once('exit', r));
    const res = await reconcileHost(h.store, h.runner);
    expect(res.reaped).toEqual([job.id]);
    await exited;
    expect(await h.store.procsOf(h.runner.host)).not.toContain(job.id);
    expect(await h.statusRecords(job.id)).toEqual(['queued', 'crashed']);
  });

  it('never writes a second terminal record', async () => {
    const job = await h.run();
    const again = await h.store.transition(job.id, {
      from: ['queued', 'running', 'cancelling'],
      to: 'crashed',
      record: { ts: new Date().toISOString(), kind: 'status', status: 'crashed' },
    });
    expect(again).toMatchObject({ ok: false, status: 'succeeded' });
    expect(await terminalRecords(job.id)).toEqual(['succeeded']);
  });

  it('a worker holding the BullMQ identity claims in one trip: same records, events and secrets as reading first', async () => {
    const events = async (id: string) =>
      ((await h.redis.xrange(h.keyspace.jobEvents, '-', '+')) as [string, string[]][])
        .map(([, f]) => JSON.parse(f[5]) as Record<string, unknown>)
        .filter((e) => e.job_id === id)
        // Everything but when, and which job.
        .map((e): Record<string, unknown> => ({ ...e, ts: undefined, job_id: undefined }));
    const runBackground = async (identity: boolean) => {
      const { meta, secrets } = newJob(
        h.request({ tags: ['trip'], argv: ['sh', '-c', 'echo "$A_TOKEN"'], env: { A_TOKEN: 'tok-1' } }),
        'inv-trip',
      );
      await h.redis.set(h.store.keys.secrets(meta.id), JSON.stringify(secrets));
      await h.submitter.recordForeground(meta);
      const final = await h.executor.execute(meta.id, identity ? { identity: eventIdentity(meta) } : {});
      return { meta, final: final! };
    };
    const [one, two] = [await runBackground(true), await runBackground(false)];
    for (const { meta, final } of [one, two]) {
      expect(final).toMatchObject({ status: 'succeeded', host: h.runner.host, runner_id: h.runner.id });
      expect(await h.redis.exists(h.store.keys.secrets(meta.id))).toBe(0);
      expect((await h.log(meta.id)).map((r) => r.line ?? r.status)).toEqual([
        'queued',
        'running',
        SCRUBBED,
        'succeeded',
      ]);
    }
    expect(await events(one.meta.id)).toEqual(await events(two.meta.id));
    expect((await events(one.meta.id)).map((e) => e.status)).toEqual(['queued', 'running', 'succeeded']);
    // A job that is not queued any more is refused, as by a read-then-claim.
    const gone = await h.executor.execute(one.meta.id, { identity: eventIdentity(one.meta) });
    expect(gone).toMatchObject({ id: one.meta.id, status: 'succeeded' });
    expect(await h.executor.execute('no-such-job', { identity: eventIdentity(one.meta) })).toBeNull();
  });

  it('a job is in exactly the status set of its status after every change (only those sets are passed)', async () => {
    const setsOf = async (id: string) => {
      const pipe = h.redis.pipeline();
      for (const s of JOB_STATUSES) pipe.sismember(h.store.keys.status(s), id);
      const res = (await pipe.exec()) ?? [];
      return JOB_STATUSES.filter((_, i) => res[i][1] === 1);
    };
    const ran = await h.run();
    expect(await setsOf(ran.id)).toEqual(['succeeded']);
    // The current status is the last of several allowed ones: its set, not the first's, loses the job.
    const { meta } = newJob(h.request(), 'inv-sets');
    await h.submitter.recordForeground(meta);
    expect(await setsOf(meta.id)).toEqual(['queued']);
    const to = (from: JobStatus[], status: JobStatus) =>
      h.store.transition(meta.id, {
        from,
        to: status,
        record: { ts: new Date().toISOString(), kind: 'status', status },
      });
    await expect(to(['queued'], 'running')).resolves.toMatchObject({ ok: true });
    await expect(to(['queued', 'cancelling', 'running'], 'cancelling')).resolves.toMatchObject({ ok: true });
    expect(await setsOf(meta.id)).toEqual(['cancelling']);
    // Refused: nothing moves.
    await expect(to(['queued', 'running'], 'failed')).resolves.toMatchObject({ ok: false });
    expect(await setsOf(meta.id)).toEqual(['cancelling']);
    await expect(to(['running', 'queued', 'cancelling'], 'cancelled')).resolves.toMatchObject({ ok: true });
    expect(await setsOf(meta.id)).toEqual(['cancelled']);
    // Fields only: no set is passed or touched.
    await h.store.transition(meta.id, { from: ['cancelled'], fields: { reason: 'checked' } });
    expect(await setsOf(meta.id)).toEqual(['cancelled']);
    expect(await h.statusRecords(meta.id)).toEqual(['queued', 'running', 'cancelling', 'cancelled']);
  });

  it('the transition script refuses, writing nothing, a change whose status sets are not passed', async () => {
    const { meta } = newJob(h.request(), 'inv-sets');
    await h.submitter.recordForeground(meta);
    const k = h.store.keys;
    const keys = [k.job(meta.id), k.log(meta.id), h.keyspace.jobEvents, k.all, k.all, k.status('running')];
    const args = [
      meta.id,
      'queued',
      'running',
      '{}',
      '',
      0,
      '',
      0,
      '',
      1000,
      1000,
      'job-log',
      1,
      'job-event',
      1,
    ];
    await expect(
      h.redis.evalsha(COMMANDS.jobTransition.sha, keys.length, ...keys, ...args).catch(async (err) => {
        if (/NOSCRIPT/.test(String(err)))
          return h.redis.eval(COMMANDS.jobTransition.lua, keys.length, ...keys, ...args);
        throw err;
      }),
    ).rejects.toThrow(/status sets of running and queued are not all passed/);
    expect((await h.store.get(meta.id))?.status).toBe('queued');
    expect(await h.redis.sismember(k.status('running'), meta.id)).toBe(0);
  });

  it('a background submit sends the create and the BullMQ job together: the job is queued with its records, a failed create is thrown', async () => {
    const { meta } = newJob(h.request({ background: true }), 'inv-submit');
    await h.submitter.submitBackground(meta, {});
    const bull = await h.queue().getJob(meta.id);
    expect(bull?.data).toEqual({ id: meta.id, event: eventIdentity(meta) });
    expect(await h.store.get(meta.id)).toMatchObject({ status: 'queued' });
    expect(await h.statusRecords(meta.id)).toEqual(['queued']);
    // The same job again: the create is refused and said so, the job's records are unchanged.
    await expect(h.submitter.submitBackground(meta, {})).rejects.toThrow(/already exists/);
    expect(await h.statusRecords(meta.id)).toEqual(['queued']);
    // On a queue with a connection of its own the two go one after the other, with the same result.
    const other = new JobSubmitter(h.redis, h.store, () => separate);
    const separate = createJobQueue(h.redis.duplicate(), h.keyspace);
    const second = newJob(h.request({ background: true }), 'inv-submit').meta;
    await other.submitBackground(second, {});
    expect((await h.queue().getJob(second.id))?.data.id).toBe(second.id);
    expect(await h.statusRecords(second.id)).toEqual(['queued']);
    await separate.close();
    await (separate.opts.connection as { quit(): Promise<unknown> }).quit();
    await h.queue().obliterate({ force: true });
  });

  it('writes a lifecycle event per status change to the job events stream', async () => {
    const job = await h.run({ tags: ['ev'] });
    const entries = (await h.redis.xrange(h.keyspace.jobEvents, '-', '+')) as [string, string[]][];
    const events = entries
      .map(([, f]) => JSON.parse(f[5]) as { job_id: string; status: string })
      .filter((e) => e.job_id === job.id)
      .map((e) => e.status);
    expect(events).toEqual(['queued', 'running', 'succeeded']);
  });
});
