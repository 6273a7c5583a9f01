import { join } from 'node:path';
import Redis from 'ioredis';
import { CoordStore } from '@coordbus/coord';
import {
  CoordEvent,
  EnvelopeCodec,
  GROUPS,
  Keyspace,
  newUlid,
  Schemas,
  SentinelObservation,
} from '@coordbus/envelope';
import {
  cleanupNamespace,
  runServiceToExit,
  ServiceProcess,
  startService,
  testKeyspace,
  testRedisUrl,
  waitFor,
} from '@coordbus/testing';
import { SyntheticCoordRoot } from '../libs/event-source/test/coord-root';

/**
 * The built sentinel-subscriber as real processes against a real Redis: replicas culling
 * together, and a SIGKILL in the middle of a stream. Run `npm run build` first.
 */
const NAME = 'sentinel-subscriber';
const codec = new EnvelopeCodec();
jest.setTimeout(180_000);

describe('sentinel-subscriber processes', () => {
  let redis: Redis;
  let keyspace: Keyspace;
  const procs: ServiceProcess[] = [];

  const start = async (env: NodeJS.ProcessEnv = {}) => {
    const svc = await startService(
      NAME,
      { REDIS_URL: testRedisUrl(), COORDBUS_NAMESPACE: keyspace.namespace, SENTINEL_BLOCK_MS: '200', ...env },
      60_000,
    );
    procs.push(svc);
    return svc;
  };
  const events = async (): Promise<CoordEvent[]> =>
    (await redis.xrange(keyspace.coordEvents, '-', '+')).map(([, f]) => codec.decode(Schemas.coordEvent, f));
  const observations = async (): Promise<SentinelObservation[]> =>
    (await redis.xrange(keyspace.sentinelObservations, '-', '+')).map(([, f]) =>
      codec.decode(Schemas.observation, f),
    );
  const groupSettled = async () => {
    const groups = (await redis.xinfo('GROUPS', keyspace.coordEvents)) as (string | number)[][];
    const g = groups.map((row) =>
      Object.fromEntries(row.map((v, i) => [v, row[i + 1]]).filter((_, i) => i % 2 === 0)),
    );
    const sentinel = g.find((x) => x.name === GROUPS.sentinel);
    return sentinel && Number(sentinel.pending) === 0 && Number(sentinel.lag) === 0;
  };
  const metric = async (svc: ServiceProcess, name: string) => {
    const text = await (await fetch(`${svc.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
    return line ? Number(line.split(' ').pop()) : 0;
  };

  beforeEach(() => {
    redis = new Redis(testRedisUrl());
    keyspace = testKeyspace('sentinel-e2e');
  });
  afterEach(async () => {
    await Promise.all(procs.splice(0).map((p) => p.stop('SIGKILL').catch(() => undefined)));
    await cleanupNamespace(redis, keyspace);
    redis.disconnect();
  });

  it('three replicas, 100 sessions that stop heartbeating: each culled exactly once, all their locks released', async () => {
    const env = { COORD_SESSION_TTL: '2', SENTINEL_CULL_INTERVAL_MS: '200' };
    const replicas = await Promise.all([start(env), start(env), start(env)]);
    // The replicas seed the stored session TTL from COORD_SESSION_TTL at start.
    const store = new CoordStore(redis, { keyspace });
    await store.register({ sessionId: 'keeper', host: 'h', pid: 1 });
    await store.lock('keeper', 'keeper-lock');
    // keeper heartbeats throughout (it must never be culled); the 100 never heartbeat again.
    const beat = setInterval(() => void store.heartbeat('keeper').catch(() => undefined), 250);
    const ids = Array.from({ length: 100 }, (_, i) => `idle-${i}`);
    try {
      for (const id of ids) {
        await store.register({ sessionId: id, host: 'h', pid: 2 });
        await store.lock(id, `res-${id}`);
      }
      await waitFor(
        async () => (await observations()).filter((o) => o.kind === 'session.dereg').length >= 100,
        '100 dereg observations',
        90_000,
        250,
      );
      await waitFor(groupSettled, 'the sentinel group to catch up', 30_000, 100);
    } finally {
      clearInterval(beat);
    }
    const all = await events();
    const deregs = all.filter((e) => e.tx_kind === 'session.dereg');
    expect(deregs.map((e) => e.session_id).sort()).toEqual([...ids].sort()); // each exactly once, keeper never
    expect(deregs.every((e) => (e.payload as { reason: string }).reason === 'ttl-expired')).toBe(true);
    const releases = all.filter((e) => e.tx_kind === 'lock.release');
    expect(releases.map((e) => e.resource).sort()).toEqual(ids.map((id) => `res-${id}`).sort());
    expect(releases.every((e) => (e.payload as { reason: string }).reason === 'owner-evicted')).toBe(true);
    expect((await store.locks()).map((l) => l.resource)).toEqual(['keeper-lock']);
    expect((await store.getSession('keeper'))?.session_id).toBe('keeper');
    // Every coord event observed exactly once across the three replicas.
    const obs = await observations();
    expect(obs.map((o) => o.tx_id).sort()).toEqual(all.map((e) => e.tx_id).sort());
    const culls = await Promise.all(replicas.map((r) => metric(r, 'coordbus_sentinel_culls_total')));
    expect(culls.reduce((a, b) => a + b, 0)).toBe(100);
    // The released locks are free to take.
    await store.register({ sessionId: 'newcomer', host: 'h', pid: 3 });
    await expect(store.lock('newcomer', 'res-idle-7')).resolves.toMatchObject({ status: 'acquired' });
    for (const r of replicas) expect(await r.stop('SIGTERM')).toBe(0);
    procs.splice(0);
  });

  it('SIGKILLed mid-stream and restarted: no observation lost or doubled', async () => {
    // Enough that the kill lands mid-stream even when this test process is descheduled for a while.
    const TOTAL = 6000;
    const published: string[] = [];
    const pipeline = redis.pipeline();
    for (let i = 0; i < TOTAL; i++) {
      const e = {
        tx_id: newUlid(),
        tx_kind: 'dispatch.issue',
        ts: new Date().toISOString(),
        ingress_ts: null,
        source: 'coord',
        session_id: `s${i % 50}`,
        resource: null,
        payload: { order_id: `o${i}`, assignee: `s${i % 50}`, ticket: `T-${i}` },
      } as CoordEvent;
      published.push(e.tx_id);
      pipeline.xadd(keyspace.coordEvents, '*', ...codec.encode(Schemas.coordEvent, e));
    }
    await pipeline.exec();
    // Default consumer names (<host>-<pid>) change on restart: the new process reclaims the dead one's pending entries.
    const env = { SENTINEL_MAX_BATCH: '50', SENTINEL_CULL: '0', SENTINEL_CLAIM_IDLE_MS: '1000' };
    const first = await start(env);
    await waitFor(
      async () => (await redis.xlen(keyspace.sentinelObservations)) >= 200,
      'the first 200 observations',
      60_000,
      10,
    );
    expect(await first.stop('SIGKILL')).toBe('SIGKILL');
    procs.splice(0);
    const seenAtKill = await redis.xlen(keyspace.sentinelObservations);
    expect(seenAtKill).toBeLessThan(TOTAL); // it really died mid-stream
    const second = await start(env);
    await waitFor(
      async () => (await redis.xlen(keyspace.sentinelObservations)) >= TOTAL && (await groupSettled()),
      `all ${TOTAL} observations`,
      90_000,
      100,
    );
    const obs = await observations();
    expect(obs).toHaveLength(TOTAL);
    expect(obs.map((o) => o.tx_id).sort()).toEqual([...published].sort());
    expect(await metric(second, 'coordbus_sentinel_events_handled_total')).toBeGreaterThan(0);
  });

  it('fs-poll bridge: a file-only coord feeds the bus; restart re-emits nothing twice and catches removals', async () => {
    const root = new SyntheticCoordRoot();
    try {
      const fsEnv = {
        SENTINEL_SOURCE: 'fs-poll',
        SENTINEL_BRIDGE: '1',
        COORD_ROOT: root.root,
        SENTINEL_TICK_MS: '100',
        SENTINEL_FS_STATE: join(root.root, '..', `${root.root.split('/').pop()}.state.json`),
        SENTINEL_CULL: '0',
      };
      // A stream-source replica in the same namespace sees the bridged events too; dedup keeps one observation each.
      const [bridge] = await Promise.all([start(fsEnv), start({ SENTINEL_CULL: '0' })]);
      root.session('legacy-1', { role: 'worker', task: 'TOD-1' });
      root.lock('repo', 'legacy-1');
      root.order('ord-1', 'legacy-1', 'TOD-2');
      root.write('sessions/torn.json', '{"session_id": "to'); // half-written: skipped, counted
      await waitFor(async () => (await observations()).length >= 3, 'three fs-poll observations', 60_000, 50);
      // A poll can take the three good files before the torn one is written: the next one counts it.
      await waitFor(
        async () => (await metric(bridge, 'coordbus_sentinel_fs_malformed_total')) > 0,
        'the torn file counted as malformed',
        30_000,
        50,
      );
      expect(await bridge.stop('SIGKILL')).toBe('SIGKILL');
      root.remove('sessions/legacy-1.json'); // while the bridge is down
      root.remove('locks/repo');
      await start(fsEnv);
      await waitFor(
        async () => (await observations()).length >= 5,
        'the removals after the restart',
        60_000,
        50,
      );
      await waitFor(groupSettled, 'the stream replica to catch up', 30_000, 100);
      const obs = await observations();
      expect(obs.every((o) => o.source === 'fs-poll')).toBe(true);
      expect(obs.map((o) => o.summary).sort()).toEqual([
        'legacy-1 acquired lock repo',
        'legacy-1 released lock repo (owner-dereg)',
        'order ord-1 (ticket TOD-2) dispatched to legacy-1',
        'session legacy-1 deregistered (explicit)',
        'session legacy-1 registered (role worker, task TOD-1)',
      ]);
      const bridged = await events();
      expect(new Set(bridged.map((e) => e.tx_id)).size).toBe(5);
      expect(bridged.every((e) => e.source === 'fs-poll')).toBe(true);
      root.remove(fsEnv.SENTINEL_FS_STATE);
    } finally {
      root.dispose();
    }
  });

  it('refuses bad sentinel configuration with exit 2, naming each variable', async () => {
    const { code, output } = await runServiceToExit(
      NAME,
      {
        REDIS_URL: testRedisUrl(),
        SENTINEL_SOURCE: 'fs-poll',
        COORD_SESSION_TTL: 'soon',
        SENTINEL_TICK_MS: '-5',
      },
      60_000,
    );
    expect(code).toBe(2);
    expect(output).toContain('COORD_SESSION_TTL must be a positive number of seconds');
    expect(output).toContain('SENTINEL_TICK_MS must be an integer');
    expect(output).toContain('COORD_ROOT must be set (the coord file root) when SENTINEL_SOURCE=fs-poll');
  });
});
