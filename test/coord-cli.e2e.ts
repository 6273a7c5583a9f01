import Redis from 'ioredis';
import { CoordEvent, CoordOpEnvelope, EnvelopeCodec, Keyspace, Schemas } from '@coordbus/envelope';
import { cleanupNamespace, freePort, testKeyspace, testRedisUrl } from '@coordbus/testing';
import { COORD, COORDBUS, json, run } from './coord-helpers';

const codec = new EnvelopeCodec();

/** `coord` as users run it: the real bin/coord process against a real Redis. */
jest.setTimeout(60_000);

describe('coord CLI (bin/coord)', () => {
  let redis: Redis;
  let ks: Keyspace;
  const env = (session: string, extra: NodeJS.ProcessEnv = {}) => ({
    REDIS_URL: testRedisUrl(),
    COORDBUS_NAMESPACE: ks.namespace,
    COORD_SESSION_ID: session,
    CLAUDE_SESSION_ID: '',
    ...extra,
  });
  const coord = (session: string, args: string[], extra: NodeJS.ProcessEnv = {}) =>
    run(COORD, args, { env: env(session, extra) });

  async function events(): Promise<CoordEvent[]> {
    return (await redis.xrange(ks.coordEvents, '-', '+')).map(([, f]) => codec.decode(Schemas.coordEvent, f));
  }
  async function envelopes(): Promise<CoordOpEnvelope[]> {
    return (await redis.xrange(ks.coordIngest, '-', '+')).map(([, f]) => codec.decode(Schemas.coordOp, f));
  }

  beforeAll(async () => {
    redis = new Redis(testRedisUrl());
    // Build the hot-path bundle once, outside any timed assertion.
    await run(COORD, ['help']);
  });
  afterAll(() => redis.disconnect());
  beforeEach(() => {
    ks = testKeyspace('coordcli');
  });
  afterEach(async () => {
    await cleanupNamespace(redis, ks);
  });

  it('runs a whole session: every op changes state, writes its event and exits with the documented code', async () => {
    const reg = await coord('alice', [
      'register',
      '--task',
      'T-1',
      '--role',
      'worker',
      '--blob',
      '{"n":1}',
      '--json',
    ]);
    expect(reg.code).toBe(0);
    expect(json(reg)).toMatchObject({
      status: 'registered',
      session: { session_id: 'alice', task: 'T-1', role: 'worker', blob: { n: 1 } },
    });
    expect(await redis.hget(`${ks.coordKey('session:alice')}`, 'task')).toBe('T-1');
    expect(json(await coord('alice', ['register', '--task', 'T-1', '--json'])).status).toBe('refreshed');
    await coord('bob', ['register']);

    const hb = await coord('alice', ['heartbeat', '--phase', 'testing', '--json']);
    expect(json(hb)).toMatchObject({ emitted: true, session: { phase: 'testing' } });

    expect((await coord('alice', ['lock', 'repo', '--ttl', '60', '--reason', 'merge'])).code).toBe(0);
    const conflict = await coord('bob', ['lock', 'repo']);
    expect(conflict.code).toBe(3);
    expect(conflict.stderr).toContain('held by alice');
    const refused = await coord('bob', ['unlock', 'repo']);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/held by alice.*refusing/);
    expect((await coord('bob', ['steal', 'repo'])).code).toBe(3);
    const stolen = await coord('bob', ['steal', 'repo', '--force', '--json']);
    expect(stolen.code).toBe(0);
    expect(json(stolen)).toMatchObject({
      status: 'acquired',
      stolenFrom: 'alice',
      lock: { owner_session_id: 'bob' },
    });
    expect((await coord('alice', ['unlock', 'nothing-here'])).code).toBe(4);

    const locks = json<Array<{ resource: string; owner_session_id: string }>>(
      await coord('alice', ['locks', '--json']),
    );
    expect(locks).toEqual([expect.objectContaining({ resource: 'repo', owner_session_id: 'bob' })]);

    expect(
      (await coord('alice', ['send', 'bob', 'please review', '--kind', 'ask', '--subject', 'PR 7'])).code,
    ).toBe(0);
    expect((await coord('alice', ['send', 'nobody', 'x'])).code).toBe(4);
    const peek = json<Array<{ body: string }>>(await coord('bob', ['recv']));
    expect(peek.map((m) => m.body)).toEqual(['please review']);
    const drained = json<Array<{ body: string; kind: string; subject: string; from_session: string }>>(
      await coord('bob', ['recv', '--drain']),
    );
    expect(drained).toEqual([
      expect.objectContaining({ body: 'please review', kind: 'ask', subject: 'PR 7', from_session: 'alice' }),
    ]);
    const empty = await coord('bob', ['recv', '--drain']);
    expect(empty.stdout.trim()).toBe('[]');

    const order = await coord('alice', [
      'dispatch',
      'bob',
      '--ticket',
      'TOD-9',
      '--order-id',
      'o-1',
      '--json',
    ]);
    expect(json(order)).toMatchObject({
      issued: true,
      order: { order_id: 'o-1', assignee: 'bob', ticket: 'TOD-9' },
    });

    const status = json(await coord('bob', ['status', '--json']));
    expect(status).toMatchObject({
      session_id: 'bob',
      session: { live: true },
      inbox_depth: 0,
      peers: { total: 2, live: 2 },
    });
    const peers = json<Array<{ session_id: string; live: boolean }>>(
      await coord('bob', ['peers', '--live', '--json']),
    );
    expect(peers.map((p) => p.session_id).sort()).toEqual(['alice', 'bob']);

    const dereg = await coord('bob', ['dereg', '--reason', 'done', '--json']);
    expect(json(dereg)).toMatchObject({ releasedLocks: ['repo'] });
    expect((await coord('bob', ['dereg'])).code).toBe(4);
    expect((await coord('bob', ['heartbeat'])).code).toBe(4);

    expect((await events()).map((e) => e.tx_kind)).toEqual([
      'session.register',
      'session.register',
      'session.heartbeat',
      'lock.acquire',
      'lock.release',
      'lock.acquire',
      'inbox.deliver',
      'dispatch.issue',
      'session.dereg',
      'lock.release',
    ]);
  });

  it('sends exactly the seed 000 envelope pair per op; a conflict (exit 3) ends at warn, a failure at error', async () => {
    await coord('alice', ['lock', 'db']);
    const r = await coord('bob', ['lock', 'db', '--json']);
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'Conflict', details: { owner: 'alice' } });
    await coord('bob', ['send', 'nobody', 'hi']); // not registered: exit 4
    const all = await envelopes();
    expect(all).toHaveLength(6);
    const [pre, post] = all.slice(2, 4);
    expect(Object.keys(pre)).toEqual([
      'v',
      'ts',
      'service',
      'host',
      'level',
      'pid',
      'target',
      'msg',
      'fields',
    ]);
    expect(Object.keys(pre.fields)).toEqual([
      'op',
      'session',
      'resource',
      'peer',
      'duration_ms',
      'phase',
      'exit_code',
    ]);
    expect(pre).toMatchObject({
      v: 0,
      service: 'coord',
      level: 'info',
      target: 'coord::lock',
      msg: 'coord.lock start',
      fields: {
        op: 'lock',
        session: 'bob',
        resource: 'db',
        peer: '',
        duration_ms: 0,
        phase: 'pre',
        exit_code: 0,
      },
    });
    // Someone else holding the lock is coordination working, not a failure: warn, never error.
    expect(post).toMatchObject({
      level: 'warn',
      msg: 'coord.lock end',
      fields: { op: 'lock', session: 'bob', resource: 'db', phase: 'post', exit_code: 3 },
    });
    expect(post.fields.duration_ms).toBeGreaterThan(0);
    expect(post.pid).toBe(pre.pid);
    expect(all[0].level).toBe('info');
    expect(all[5]).toMatchObject({
      level: 'error',
      fields: { op: 'send', peer: 'nobody', resource: '', exit_code: 4 },
    });
  });

  it('rejects bad usage with exit 2 and bad input with exit 7, naming the problem', async () => {
    const unknown = await coord('a', ['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown op "frobnicate"');
    expect((await coord('a', ['lock'])).code).toBe(2);
    expect((await coord('a', ['lock', 'r', '--ttl', 'soon'])).stderr).toContain(
      '--ttl must be a positive duration like 90s, 5m or a number of seconds',
    );
    expect((await coord('a', ['register', '--bogus'])).code).toBe(2);
    const blob = await coord('a', ['register', '--blob', '{nope']);
    expect(blob.code).toBe(7);
    expect(blob.stderr).toContain('--blob is not JSON');
    const badId = await coord('bad id!', ['register']);
    expect(badId.code).toBe(7);
    expect((await run(COORD, [], { env: env('a') })).code).toBe(2);
  });

  it('recv --follow is woken by a send from another process; --timeout with nothing gives []', async () => {
    await coord('rx', ['register']);
    const follower = coord('rx', ['recv', '--follow', '--timeout', '15']);
    // Give the follower time to block; the assertion does not depend on it (a message sent
    // before BLPOP is taken just the same).
    await new Promise((r) => setTimeout(r, 300));
    await coord('tx', ['send', 'rx', 'ping']);
    const got = await follower;
    expect(got.code).toBe(0);
    expect(json<Array<{ body: string }>>(got).map((m) => m.body)).toEqual(['ping']);
    expect(got.ms).toBeLessThan(10_000);
    const idle = await coord('rx', ['recv', '--follow', '--timeout', '0.2']);
    expect(idle.code).toBe(0);
    expect(idle.stdout.trim()).toBe('[]');
  });

  it('with Redis down: exit 5 fast, and LOGS_COORD_DISABLED=1 publishes nothing', async () => {
    const dead = `redis://127.0.0.1:${await freePort()}`;
    const r = await coord('a', ['heartbeat'], { REDIS_URL: dead });
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('redis unavailable');
    expect(r.ms).toBeLessThan(5000);
    await coord('a', ['register'], { LOGS_COORD_DISABLED: '1' });
    expect(await redis.exists(ks.coordIngest)).toBe(0);
    expect(await redis.exists(ks.coordKey('session:a'))).toBe(1);
  });

  it('coordbus coord <op> is the same implementation, flags and exit codes', async () => {
    await coord('alice', ['lock', 'shared']);
    const r = await run(COORDBUS, ['coord', 'lock', 'shared', '--json'], { env: env('bob') });
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stderr).error.details.owner).toBe('alice');
    const ok = await run(COORDBUS, ['coord', 'locks', '--json'], { env: env('bob') });
    expect(json<unknown[]>(ok)).toHaveLength(1);
  });
});
