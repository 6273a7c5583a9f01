import { newUlid } from '@coordbus/envelope';
import { cancelJobs } from '../src/ops/cancel';
import { prune } from '../src/ops/prune';
import { newJob } from '../src/queue/submit';
import { publicRow } from '../src/store/job-store';
import { Harness } from './harness';

describe('env scrub', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await new Harness('jobs-scrub').start();
  });
  afterAll(() => h.close());

  const SECRET = 'sk-live-0123456789';
  const env = {
    PLAIN: 'visible',
    GH_TOKEN: SECRET,
    db_password: 'pw-hunter2',
    Api_Key: 'key-42424242',
    AWS_SECRET: 'aws-9999',
  };

  /** Every value stored under the namespace, as one string. */
  async function everythingStored(): Promise<string> {
    const keys = await h.redis.keys(`${h.keyspace.namespace}:*`);
    const parts: string[] = [];
    for (const key of keys) {
      const type = await h.redis.type(key);
      if (type === 'hash') parts.push(JSON.stringify(await h.redis.hgetall(key)));
      else if (type === 'stream') parts.push(JSON.stringify(await h.redis.xrange(key, '-', '+')));
      else if (type === 'string') parts.push(`${key}=${await h.redis.get(key)}`);
      else if (type === 'set') parts.push(JSON.stringify(await h.redis.smembers(key)));
      else if (type === 'zset') parts.push(JSON.stringify(await h.redis.zrange(key, '0', '-1')));
      else if (type === 'list') parts.push(JSON.stringify(await h.redis.lrange(key, 0, -1)));
    }
    return parts.join('\n');
  }

  it('a background job: secrets wait in their own key (with a TTL) until the job starts, then are gone', async () => {
    const { meta, secrets } = newJob(
      h.request({
        env,
        background: true,
        argv: ['sh', '-c', 'echo "token=$GH_TOKEN plain=$PLAIN pw=$db_password"'],
      }),
      newUlid(),
    );
    await h.submitter.submitBackground(meta, secrets);
    const secretKey = h.store.keys.secrets(meta.id);
    expect(await h.redis.pttl(secretKey)).toBeGreaterThan(0);
    // Nothing but the secrets key holds a value, not the metadata, event, log or BullMQ job.
    const before = (await everythingStored())
      .split('\n')
      .filter((l) => !l.startsWith(`${secretKey}=`))
      .join('\n');
    for (const v of Object.values(secrets)) expect(before).not.toContain(v);
    expect(before).toContain('visible');

    const final = await h.executor.execute(meta.id);
    expect(final!.status).toBe('succeeded');
    expect(await h.redis.exists(secretKey)).toBe(0);
    const lines = (await h.log(meta.id)).filter((r) => r.kind === 'stdout').map((r) => r.line);
    // The process got them; what it printed is redacted in the log.
    expect(lines).toEqual(['token=[scrubbed] plain=visible pw=[scrubbed]']);
    const after = await everythingStored();
    for (const v of Object.values(secrets)) expect(after).not.toContain(v);
    expect(final!.secret_names).toEqual(['AWS_SECRET', 'Api_Key', 'GH_TOKEN', 'db_password']);
    expect(final!.env).toEqual({ PLAIN: 'visible' });
    expect(JSON.stringify(publicRow(final!))).not.toContain(SECRET);
    await h.queue().obliterate({ force: true });
  });

  it('a background job whose secrets expired while queued fails instead of running without them', async () => {
    const { meta, secrets } = newJob(
      h.request({ env, background: true, argv: ['sh', '-c', 'echo ran'] }),
      newUlid(),
    );
    await h.submitter.submitBackground(meta, secrets);
    await h.redis.del(h.store.keys.secrets(meta.id)); // what the TTL does
    const final = await h.executor.execute(meta.id);
    expect(final).toMatchObject({ status: 'failed' });
    expect(final!.reason).toBe(
      'its secrets expired before it started (AWS_SECRET, Api_Key, GH_TOKEN, db_password); submit it again',
    );
    expect((await h.log(meta.id)).some((r) => r.line === 'ran')).toBe(false);
    await h.queue().obliterate({ force: true });
  });

  it('metadata written by a newer coordbus is refused with SchemaMismatch', async () => {
    const job = await h.run();
    await h.redis.hset(h.store.keys.job(job.id), 'meta_v', '2');
    await expect(h.store.get(job.id)).rejects.toMatchObject({ code: 'SchemaMismatch' });
  });

  it('a foreground job keeps its secrets in memory only', async () => {
    const job = await h.run({ env, argv: ['sh', '-c', 'test "$GH_TOKEN" = "$EXPECT"'], ...{} });
    expect(job.status).toBe('failed'); // EXPECT unset: proves the comparison ran with the token
    const ok = await h.run({
      env: { ...env, EXPECT: SECRET },
      argv: ['sh', '-c', 'test "$GH_TOKEN" = "$EXPECT"'],
    });
    // EXPECT carries the secret value under a plain name: it is stored, like any plain variable.
    expect(ok.status).toBe('succeeded');
    const stored = JSON.stringify(await h.store.get(job.id)) + JSON.stringify(await h.log(job.id));
    expect(stored).not.toContain(SECRET);
  });
});

describe('cancel matching', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await new Harness('jobs-cancel').start();
  });
  afterEach(() => h.close());

  async function fixture() {
    // Two invocations whose ids differ from the start (as ids minted at different times do).
    const inv1 = `01HAAAAAAA${newUlid().slice(10)}`;
    const inv2 = `01JBBBBBBB${newUlid().slice(10)}`;
    const a = await h.queued({ name: 'a', hook: 'SessionStart', worktree: '/w/1', tags: ['x'] }, inv1);
    const b = await h.queued({ name: 'b', hook: 'SessionStart', worktree: '/w/2', tags: ['y'] }, inv1);
    const c = await h.queued({ name: 'c', hook: 'Stop', worktree: '/w/1', tags: ['x', 'y'] }, inv2);
    return { a, b, c, inv1, inv2 };
  }
  const names = (r: { cancelled: { name: string }[] }) => r.cancelled.map((j) => j.name).sort();

  it('by hook', async () => {
    await fixture();
    expect(names(await cancelJobs(h.store, h.queue, { filter: { hook: 'SessionStart' } }))).toEqual([
      'a',
      'b',
    ]);
  });
  it('by worktree', async () => {
    await fixture();
    expect(names(await cancelJobs(h.store, h.queue, { filter: { worktree: '/w/1' } }))).toEqual(['a', 'c']);
  });
  it('by tag', async () => {
    await fixture();
    expect(names(await cancelJobs(h.store, h.queue, { filter: { tag: 'y' } }))).toEqual(['b', 'c']);
  });
  it('by invocation prefix, alone', async () => {
    const { inv2 } = await fixture();
    expect(
      names(await cancelJobs(h.store, h.queue, { filter: { inv: inv2.slice(0, 10).toLowerCase() } })),
    ).toEqual(['c']);
  });
  it('by age', async () => {
    const { a } = await fixture();
    await h.store.transition(a.id, {
      from: ['queued'],
      fields: { created_at: new Date(Date.now() - 3_600_000).toISOString() },
    });
    expect(names(await cancelJobs(h.store, h.queue, { filter: { olderThanMs: 30 * 60_000 } }))).toEqual([
      'a',
    ]);
  });
  it('predicates AND-combine', async () => {
    await fixture();
    expect(names(await cancelJobs(h.store, h.queue, { filter: { worktree: '/w/1', tag: 'y' } }))).toEqual([
      'c',
    ]);
  });
  it('--all, and finished jobs are never touched', async () => {
    await fixture();
    const done = await h.run({ name: 'done' });
    expect(names(await cancelJobs(h.store, h.queue, { filter: {}, all: true }))).toEqual(['a', 'b', 'c']);
    expect((await h.store.get(done.id))!.status).toBe('succeeded');
  });
  it('no match is NoMatch; an unknown job is NotFound; nothing at all is refused', async () => {
    await fixture();
    await expect(cancelJobs(h.store, h.queue, { filter: { hook: 'Nope' } })).rejects.toMatchObject({
      code: 'NoMatch',
    });
    await expect(cancelJobs(h.store, h.queue, { jobId: 'NOPE', filter: {} })).rejects.toMatchObject({
      code: 'NotFound',
    });
    await expect(cancelJobs(h.store, h.queue, { filter: {} })).rejects.toMatchObject({ code: 'Invalid' });
  });
});

describe('prune', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await new Harness('jobs-prune').start();
  });
  afterAll(() => h.close());

  it('removes old finished jobs with their log streams; --dry-run removes nothing', async () => {
    const old = await h.run({ name: 'old' });
    const fresh = await h.run({ name: 'fresh' });
    const active = await h.queued({ name: 'waiting' });
    const longAgo = new Date(Date.now() - 10 * 86_400_000).toISOString();
    await h.store.transition(old.id, { from: ['succeeded'], fields: { finished_at: longAgo } });
    const policy = { keepLast: 0, retentionMs: 86_400_000, staleRunningAfterMs: 60_000 };

    const dry = await prune(h.store, policy, { dryRun: true, localHost: h.runner.host });
    expect(dry.decision.evict.map((e) => e.id)).toEqual([old.id]);
    expect(dry.evicted).toEqual([]);
    expect(await h.redis.exists(h.store.keys.job(old.id), h.store.keys.log(old.id))).toBe(2);

    const real = await prune(h.store, policy, { localHost: h.runner.host });
    expect(real.evicted).toEqual([old.id]);
    expect(await h.redis.exists(h.store.keys.job(old.id), h.store.keys.log(old.id))).toBe(0);
    expect(await h.store.allIds()).toEqual(expect.arrayContaining([fresh.id, active.id]));
    expect(await h.store.allIds()).not.toContain(old.id);
    expect(await h.redis.sismember(h.store.keys.status('succeeded'), old.id)).toBe(0);
  });

  it('marks a stale running job whose runner is gone as crashed', async () => {
    const job = await h.queued();
    await h.store.transition(job.id, {
      from: ['queued'],
      to: 'running',
      fields: {
        host: 'elsewhere',
        runner_id: 'replica:elsewhere:1:gone',
        started_at: new Date(Date.now() - 3_600_000).toISOString(),
      },
    });
    const res = await prune(
      h.store,
      { keepLast: 10, retentionMs: 86_400_000, staleRunningAfterMs: 60_000 },
      { localHost: h.runner.host },
    );
    expect(res.crashed).toEqual([job.id]);
    expect((await h.store.get(job.id))!).toMatchObject({
      status: 'crashed',
      reason: 'stale: its runner is gone',
    });
  });
});
