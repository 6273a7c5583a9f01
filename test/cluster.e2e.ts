import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { CoordStore, keySlot } from '@coordbus/coord';
import {
  CoordEvent,
  CoordOpEnvelope,
  EnvelopeCodec,
  fieldsToRecord,
  GROUPS,
  Keyspace,
  Schemas,
  SentinelObservation,
  TelemetryEvent,
} from '@coordbus/envelope';
import { RedisStreamsContext, RedisStreamsServer, trimAckAware } from '@coordbus/redis-streams';
import { createRedis } from '@coordbus/runtime';
import {
  runServiceToExit,
  ServiceProcess,
  startService,
  TestRedisCluster,
  testKeyspace,
  waitFor,
} from '@coordbus/testing';
import { TelemetryEmitter } from '../apps/log-tailer/src/emit/telemetry-emitter';
import type { Checkpoint } from '../apps/log-tailer/src/follow/file-identity';
import { COORD, COORDBUS, run } from './coord-helpers';

/**
 * Issue #8 section 2: the services run unchanged against a 3-master Redis Cluster. One cluster
 * for the file; every part selects cluster mode the way a deployment does (REDIS_CLUSTER=1,
 * REDIS_URL naming one seed node). The seed is a node that owns neither the `{coord}` nor the
 * `{ingest}` slot, so every client must follow the cluster's redirects. Run `npm run build` first.
 */
jest.setTimeout(120_000);
const codec = new EnvelopeCodec();

describe('coordbus on a Redis Cluster (3 masters)', () => {
  const cluster = new TestRedisCluster(3);
  let seed: string;
  /** An ioredis Cluster for the test's own reads (made by the runtime's createRedis). */
  let admin: Redis;
  const procs: ServiceProcess[] = [];

  /** A node's `host:port` owning `slot`, from CLUSTER SLOTS. */
  const ownerOf = async (slot: number): Promise<string> => {
    const ranges = (await admin.cluster('SLOTS')) as unknown as Array<[number, number, [string, number]]>;
    const r = ranges.find(([lo, hi]) => slot >= lo && slot <= hi)!;
    return `${r[2][0]}:${r[2][1]}`;
  };
  const clusterEnv = (ks: Keyspace) => ({
    REDIS_URL: seed,
    REDIS_CLUSTER: '1',
    COORDBUS_NAMESPACE: ks.namespace,
  });
  const coord = (ks: Keyspace, session: string, args: string[], extra: NodeJS.ProcessEnv = {}) =>
    run(COORD, args, { env: { ...clusterEnv(ks), COORD_SESSION_ID: session, ...extra }, timeoutMs: 15_000 });
  const start = async (name: string, env: NodeJS.ProcessEnv) => {
    const svc = await startService(name, env, 60_000);
    procs.push(svc);
    return svc;
  };
  const coordEvents = async (ks: Keyspace): Promise<CoordEvent[]> =>
    (await admin.xrange(ks.coordEvents, '-', '+')).map(([, f]) => codec.decode(Schemas.coordEvent, f));

  beforeAll(async () => {
    await cluster.start();
    const probe = new Redis(cluster.urls[0]);
    const owners = new Set<string>();
    try {
      const ranges = (await probe.cluster('SLOTS')) as unknown as Array<[number, number, [string, number]]>;
      for (const slot of [keySlot('{coord}'), keySlot('{ingest}')]) {
        const r = ranges.find(([lo, hi]) => slot >= lo && slot <= hi)!;
        owners.add(String(r[2][1]));
      }
    } finally {
      probe.disconnect();
    }
    seed = cluster.nodes.find((n) => !owners.has(String(n.port)))!.url;
    admin = createRedis(seed, { cluster: true, name: 'cluster-e2e' });
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL').catch(() => undefined)));
    admin?.disconnect();
    await cluster.dispose();
  });

  it('the seed owns neither the {coord} nor the {ingest} slot, and the two live on different nodes', async () => {
    const owners = [await ownerOf(keySlot('{coord}')), await ownerOf(keySlot('{ingest}'))];
    expect(new Set(owners).size).toBe(2);
    expect(owners).not.toContain(new URL(seed).host);
  });

  /** The coord test's namespace; the archivist test archives what it wrote. */
  const coordKs = testKeyspace('cl-coord');

  it('coord operations: real bin/coord processes with REDIS_CLUSTER=1', async () => {
    const ks = coordKs;
    const ok = async (session: string, args: string[]) => {
      const r = await coord(ks, session, args);
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: '' });
      return r.stdout;
    };
    expect(await ok('alice', ['register', '--task', 'build'])).toContain('registered alice');
    await ok('bob', ['register']);
    expect(await ok('alice', ['lock', 'repo'])).toContain('locked repo');
    const conflict = await coord(ks, 'bob', ['lock', 'repo']);
    expect(conflict.code).toBe(3);
    expect(conflict.stderr).toContain('held by alice');
    await ok('alice', ['heartbeat', '--phase', 'testing']);
    // A blocked follower (BLMOVE of the inbox onto itself, on the inbox's node) gets a message sent meanwhile.
    const follower = coord(ks, 'bob', ['recv', '--follow', '--timeout', '10']);
    await waitFor(
      async () =>
        (await Promise.all(cluster.nodes.map((n) => clientList(n.url)))).some((l) =>
          l.includes('cmd=blmove'),
        ),
      'bob to block on his inbox',
    );
    await ok('alice', ['send', 'bob', 'hello over the cluster']);
    const followed = await follower;
    expect(followed.code).toBe(0);
    expect(JSON.parse(followed.stdout)).toMatchObject([
      { from_session: 'alice', body: 'hello over the cluster' },
    ]);
    expect(await ok('alice', ['dispatch', 'bob', '--ticket', 'T-1', '--order-id', 'order-1'])).toContain(
      'issued order-1',
    );
    const status = JSON.parse(await ok('alice', ['status', '--json']));
    expect(status).toMatchObject({ locks: [{ resource: 'repo' }], peers: { total: 2, live: 2 } });
    await ok('alice', ['send', 'bob', 'second']);
    expect(JSON.parse(await ok('bob', ['recv', '--drain']))).toMatchObject([{ body: 'second' }]);
    expect(await ok('alice', ['lock', 'scratch'])).toContain('locked scratch');
    expect(await ok('alice', ['unlock', 'scratch'])).toContain('unlocked');
    expect(await ok('bob', ['steal', 'repo', '--force'])).toContain('stolen from alice');
    expect(await ok('bob', ['dereg'])).toContain('released repo');
    expect(await ok('alice', ['peers'])).toContain('alice');

    const kinds = (await coordEvents(ks)).map((e) => e.tx_kind);
    expect(kinds).toEqual([
      'session.register',
      'session.register',
      'lock.acquire',
      'session.heartbeat',
      'inbox.deliver',
      'dispatch.issue',
      'inbox.deliver',
      'lock.acquire',
      'lock.release',
      'lock.release',
      'lock.acquire',
      'session.dereg',
      'lock.release',
    ]);
    // Every op sent its pre and post envelope to the ingest stream (another slot, another node).
    const ops = 16; // the coord processes run above
    await waitFor(async () => (await admin.xlen(ks.coordIngest)) === ops * 2, 'every op envelope');
    const envelopes = (await admin.xrange(ks.coordIngest, '-', '+')).map(([, f]) =>
      codec.decode(Schemas.coordOp, f),
    );
    expect(envelopes.filter((e) => e.fields.phase === 'post' && e.fields.exit_code === 3)).toHaveLength(1);
  });

  it('the transport: consumes, dead-letters and reclaims on the cluster', async () => {
    const ks = testKeyspace('cl-transport');
    const stream = ks.telemetryEvents;
    const publishRaw = async (s: string, fields: string[]) => (await admin.xadd(s, '*', ...fields)) as string;
    const raw = (i: number, poison = false) => [
      'type',
      'telemetry',
      'v',
      '1',
      'data',
      JSON.stringify({ i, poison }),
    ];
    const servers: RedisStreamsServer[] = [];
    try {
      // A consumer that died holding 5 entries (read, never acked).
      await admin.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
      const orphaned = [];
      for (let i = 0; i < 5; i++) orphaned.push(await publishRaw(stream, raw(i)));
      await admin.xreadgroup('GROUP', 'g', 'ghost', 'COUNT', 5, 'STREAMS', stream, '>');
      const fresh = [];
      for (let i = 5; i < 25; i++) fresh.push(await publishRaw(stream, raw(i)));
      const poison = await publishRaw(stream, raw(99, true));

      const handled = new Map<string, number>();
      const server = new RedisStreamsServer({
        url: seed,
        cluster: true,
        keyspace: ks,
        consumer: 'survivor',
        blockMs: 200,
        retryDelayMs: 10,
        maxDeliveries: 2,
        reclaimIdleMs: 300,
        reclaimIntervalMs: 100,
        logger: { log: () => undefined, warn: () => undefined, error: () => undefined },
      });
      servers.push(server);
      // No schema: the handler gets the entry's fields as a record.
      server.addStreamHandler({ stream: 'telemetryEvents', group: 'g' }, (async (
        fields: Record<string, string>,
        ctx: RedisStreamsContext,
      ) => {
        if ((JSON.parse(fields.data) as { poison: boolean }).poison) throw new Error('poison entry');
        handled.set(ctx.getEntryId(), (handled.get(ctx.getEntryId()) ?? 0) + 1);
      }) as never);
      await new Promise<void>((resolve, reject) =>
        server.listen((e?: unknown) => (e ? reject(e) : resolve())),
      );
      expect(server.isReady()).toBe(true);

      await waitFor(() => handled.size === 25, 'the 20 fresh and 5 reclaimed entries handled', 20_000);
      await waitFor(async () => (await admin.xlen(ks.deadLetter(stream))) === 1, 'the poison dead-lettered');
      await waitFor(
        async () =>
          Number(
            fieldsToRecord(((await admin.xinfo('GROUPS', stream)) as string[][])[0].map(String)).pending,
          ) === 0,
        'nothing left pending',
      );
      expect([...handled.keys()].sort()).toEqual([...orphaned, ...fresh].sort());
      expect([...handled.values()].every((n) => n === 1)).toBe(true);
      const [[, deadFields]] = await admin.xrange(ks.deadLetter(stream), '-', '+');
      const dead = codec.decode(Schemas.deadLetter, deadFields);
      expect(dead).toMatchObject({
        entry_id: poison,
        source_stream: stream,
        group: 'g',
        consumer: 'survivor',
      });
      expect(dead.reason).toContain('poison entry');
      expect((await server.metrics.reclaimed.get()).values.map((v) => v.value)).toEqual([5]);
    } finally {
      for (const s of servers) await s.close();
    }
  });

  it('the fan-out: the built fanout-publisher replays and publishes coord envelopes cluster-wide', async () => {
    const ks = testKeyspace('cl-fanout');
    await start('fanout-publisher', { ...clusterEnv(ks), FANOUT_TRIM_INTERVAL_MS: '200' });
    // Pub/sub is cluster-wide: a plain subscriber on a node that owns neither slot hears it.
    const sub = new Redis(seed);
    const heard: CoordOpEnvelope[] = [];
    sub.on('pmessage', (_p, _c, m: string) => heard.push(JSON.parse(m) as CoordOpEnvelope));
    await sub.psubscribe(ks.coordLevelPattern);
    try {
      expect((await coord(ks, 'fan-a', ['register'])).code).toBe(0);
      expect((await coord(ks, 'fan-a', ['lock', 'shared'])).code).toBe(0);
      expect((await coord(ks, 'fan-b', ['lock', 'shared'])).code).toBe(3);
      await waitFor(
        async () => (await admin.xlen(ks.coordReplay)) === 6,
        'six envelopes on logs:stream:coord',
      );
      await waitFor(() => heard.length === 6, 'six envelopes on logs.coord.*');
      const replay = (await admin.xrange(ks.coordReplay, '-', '+')).map(([, f]) => fieldsToRecord(f));
      // fan-b's refused lock (exit 3) is a conflict: warn, not error.
      expect(replay.filter((r) => r.level === 'warn')).toHaveLength(1);
      expect(replay.filter((r) => r.level === 'error')).toHaveLength(0);
      expect(heard.map((e) => `${e.fields.session}:${e.fields.op}:${e.fields.phase}`).sort()).toEqual(
        [
          'fan-a:register:pre',
          'fan-a:register:post',
          'fan-a:lock:pre',
          'fan-a:lock:post',
          'fan-b:lock:pre',
          'fan-b:lock:post',
        ].sort(),
      );
      await waitFor(async () => {
        const g = fieldsToRecord(
          ((await admin.xinfo('GROUPS', ks.coordIngest)) as string[][])[0].map(String),
        );
        return g.name === GROUPS.fanout && g.pending === '0';
      }, 'the fanout group to ack everything');
      // `coordbus replay` reads the replay stream through the cluster (its slot is on another node).
      const replayed = await run(COORDBUS, ['replay', '--count', '6', '--json'], {
        env: clusterEnv(ks),
        timeoutMs: 15_000,
      });
      expect(replayed.code).toBe(0);
      expect(replayed.stdout.trim().split('\n')).toHaveLength(6);
    } finally {
      sub.disconnect();
    }
  });

  it('the sentinel: a session that stops heartbeating is culled on the cluster, its locks released', async () => {
    const ks = testKeyspace('cl-sentinel');
    const sentinel = await start('sentinel-subscriber', {
      ...clusterEnv(ks),
      COORD_SESSION_TTL: '2',
      SENTINEL_CULL_INTERVAL_MS: '200',
      SENTINEL_BLOCK_MS: '200',
    });
    // The test's own CoordStore runs on an ioredis Cluster, like the sentinel's.
    const store = new CoordStore(admin, { keyspace: ks });
    expect((await coord(ks, 'keeper', ['register'], { COORD_SESSION_TTL: '2' })).code).toBe(0);
    expect((await coord(ks, 'idle', ['register'], { COORD_SESSION_TTL: '2' })).code).toBe(0);
    expect((await coord(ks, 'idle', ['lock', 'idle-res'], { COORD_SESSION_TTL: '2' })).code).toBe(0);
    expect((await coord(ks, 'keeper', ['lock', 'keeper-res'], { COORD_SESSION_TTL: '2' })).code).toBe(0);
    const beat = setInterval(() => void store.heartbeat('keeper').catch(() => undefined), 300);
    try {
      await waitFor(async () => (await store.getSession('idle')) === null, 'idle to be culled', 20_000);
      await waitFor(
        async () =>
          (await admin.xrange(ks.sentinelObservations, '-', '+'))
            .map(([, f]) => codec.decode(Schemas.observation, f) as SentinelObservation)
            .some((o) => o.kind === 'session.dereg' && o.session_id === 'idle'),
        'the cull observed',
      );
    } finally {
      clearInterval(beat);
    }
    const events = await coordEvents(ks);
    const deregs = events.filter((e) => e.tx_kind === 'session.dereg');
    expect(deregs.map((e) => [e.session_id, (e.payload as { reason: string }).reason])).toEqual([
      ['idle', 'ttl-expired'],
    ]);
    expect(deregs[0].source).toBe('sentinel');
    const released = events.filter((e) => e.tx_kind === 'lock.release');
    expect(released.map((e) => [e.resource, (e.payload as { reason: string }).reason])).toEqual([
      ['idle-res', 'owner-evicted'],
    ]);
    expect((await store.locks()).map((l) => l.resource)).toEqual(['keeper-res']);
    expect((await store.getSession('keeper'))?.session_id).toBe('keeper');
    expect(await sentinel.stop('SIGTERM')).toBe(0);
  });

  it('the job queue: the built job-coordinator runs `coordbus jobs run -- true` to succeeded', async () => {
    const ks = testKeyspace('cl-jobs');
    const env = clusterEnv(ks);
    const jc = await start('job-coordinator', env);
    const submitted = await run(COORDBUS, ['jobs', 'run', '--json', '--', 'true'], {
      env,
      timeoutMs: 20_000,
    });
    expect({ code: submitted.code, stderr: submitted.stderr }).toEqual({ code: 0, stderr: '' });
    const job = JSON.parse(submitted.stdout) as { id: string; status: string };
    expect(job.status).toBe('queued');
    let listed: Array<{ id: string; status: string; exit_code: number | null }> = [];
    await waitFor(
      async () => {
        const ls = await run(COORDBUS, ['jobs', 'ls', '--json'], { env, timeoutMs: 20_000 });
        listed = ls.code === 0 ? JSON.parse(ls.stdout) : [];
        return listed.some((j) => j.id === job.id && j.status === 'succeeded');
      },
      'the job to succeed',
      30_000,
      250,
    );
    expect(listed.find((j) => j.id === job.id)).toMatchObject({ status: 'succeeded', exit_code: 0 });
    // The BullMQ keys sit in the {bull} slot, the job state in the {jobs} slot.
    const bullKeys = await keysOnAllNodes(cluster, `${ks.bullPrefix}:*`);
    expect(bullKeys.length).toBeGreaterThan(0);
    expect(new Set(bullKeys.map((k) => keySlot(k)))).toEqual(new Set([keySlot(ks.bullPrefix)]));
    // A long job followed live (a blocking XREAD on a duplicated Cluster connection) and
    // cancelled (the control channel is pub/sub through the Cluster).
    const long = await run(COORDBUS, ['jobs', 'run', '--json', '--shell', '--', 'echo started; sleep 30'], {
      env,
      timeoutMs: 20_000,
    });
    const longId = (JSON.parse(long.stdout) as { id: string }).id;
    const follow = run(COORDBUS, ['jobs', 'logs', longId, '--follow', '--stdout'], {
      env,
      timeoutMs: 30_000,
    });
    await waitFor(async () => {
      const ls = await run(COORDBUS, ['jobs', 'ls', '--json', '--status', 'running'], {
        env,
        timeoutMs: 20_000,
      });
      return ls.code === 0 && (JSON.parse(ls.stdout) as Array<{ id: string }>).some((j) => j.id === longId);
    }, 'the long job to run');
    const cancelled = await run(COORDBUS, ['jobs', 'cancel', longId], { env, timeoutMs: 20_000 });
    expect({ code: cancelled.code, stderr: cancelled.stderr }).toEqual({ code: 0, stderr: '' });
    const followed = await follow;
    expect(followed.code).toBe(1); // the followed job was cancelled: it did not succeed
    expect(followed.stdout).toContain('started');
    const final = await run(COORDBUS, ['jobs', 'ls', '--json'], { env, timeoutMs: 20_000 });
    expect(
      (JSON.parse(final.stdout) as Array<{ id: string; status: string }>).find((j) => j.id === longId),
    ).toMatchObject({ status: 'cancelled' });

    // Retention on the cluster: the finished job goes (its hash, log and index entries in one script).
    const pruned = await run(COORDBUS, ['jobs', 'prune', '--retention', '0s', '--keep-last', '0'], {
      env,
      timeoutMs: 20_000,
    });
    expect({ code: pruned.code, stderr: pruned.stderr }).toEqual({ code: 0, stderr: '' });
    const after = await run(COORDBUS, ['jobs', 'ls', '--json'], { env, timeoutMs: 20_000 });
    expect((JSON.parse(after.stdout) as Array<{ id: string }>).map((j) => j.id)).not.toContain(job.id);
    expect((JSON.parse(after.stdout) as Array<{ id: string }>).map((j) => j.id)).not.toContain(longId);
    expect(await jc.stop('SIGTERM')).toBe(0);
  });

  it('the archivist: the built telemetry-archivist archives the coord streams from the cluster', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cluster-archive-'));
    try {
      const archivist = await start('telemetry-archivist', {
        ...clusterEnv(coordKs),
        ARCHIVIST_DATA_DIR: dir,
      });
      const count = async (stream: string) => {
        const res = await fetch(`${archivist.url}/v1/events?stream=${stream}&limit=1000`);
        return ((await res.json()) as { events: unknown[] }).events.length;
      };
      // What the coord test wrote: 16 ops' pre/post envelopes and their coord events.
      const ingest = await admin.xlen(coordKs.coordIngest);
      const events = await admin.xlen(coordKs.coordEvents);
      expect([ingest, events]).toEqual([32, 13]);
      await waitFor(
        async () => (await count('coordIngest')) === ingest && (await count('coordEvents')) === events,
        'the coord envelopes and events archived',
        30_000,
      );
      expect(await archivist.stop('SIGTERM')).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the log-tailer's commit script (events + checkpoint) and the ack-aware trimmer run on the cluster", async () => {
    const ks = testKeyspace('cl-tailer');
    const emitter = new TelemetryEmitter(admin, ks, codec, 1000);
    const event = (i: number): TelemetryEvent =>
      ({
        source: 'build-log',
        event: 'stall',
        status: 'stall',
        duration_ms: i,
        detail: { i },
        ts: new Date().toISOString(),
      }) as TelemetryEvent;
    const ref = { source: 'build-log', path: '/var/log/build.log' };
    const checkpoint = { v: 1, offset: 42, updated_at: new Date().toISOString() } as unknown as Checkpoint;
    await emitter.commit([emitter.encode(event(1)), emitter.encode(event(2))], ref, checkpoint);
    expect(await admin.xlen(ks.telemetryEvents)).toBe(2);
    expect(JSON.parse((await emitter.loadCheckpoint(ref))!)).toMatchObject({ offset: 42 });
    const trimmed = await trimAckAware(admin, ks.telemetryEvents, { hardCap: 1 });
    expect(trimmed).toMatchObject({ capDropped: 1, length: 1 });
  });

  it('a wrong REDIS_CLUSTER is a clear configuration error, for the services and for coord', async () => {
    const ks = testKeyspace('cl-mode');
    const svc = await runServiceToExit('fanout-publisher', {
      REDIS_URL: seed,
      COORDBUS_NAMESPACE: ks.namespace,
    });
    expect(svc.code).toBe(2);
    expect(svc.output).toContain('REDIS_CLUSTER must be 1: REDIS_URL names a node of a Redis Cluster');
    const r = await run(COORD, ['register'], {
      env: { REDIS_URL: seed, COORDBUS_NAMESPACE: ks.namespace, COORD_SESSION_ID: 'x', REDIS_CLUSTER: '' },
    });
    expect(r.code).toBe(7);
    expect(r.stderr).toContain('REDIS_CLUSTER must be 1');
  });

  it('no command anywhere hit a CROSSSLOT error', async () => {
    for (const node of cluster.nodes) {
      const c = new Redis(node.url);
      try {
        const stats = String(await c.info('errorstats'));
        expect({ node: node.port, crossslot: /errorstat_CROSSSLOT/.test(stats) }).toEqual({
          node: node.port,
          crossslot: false,
        });
      } finally {
        c.disconnect();
      }
    }
    for (const p of procs) expect(p.lines.filter((l) => /CROSSSLOT|non local key/i.test(l))).toEqual([]);
  });

  // Last: it takes a master down for good.
  it('coord reports a lost {coord} master as unavailable (exit 5) within its bound', async () => {
    const ks = testKeyspace('cl-down');
    const owner = await ownerOf(keySlot('{coord}'));
    await cluster.nodes.find((n) => `127.0.0.1:${n.port}` === owner)!.stop('SIGKILL');
    const r = await coord(ks, 'x', ['register'], { COORD_REDIS_TIMEOUT: '1' });
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('unavailable');
    expect(r.ms).toBeLessThan(5000);
  });
});

/** CLIENT LIST of one node (the test's Cluster client hides which node a command went to). */
async function clientList(url: string): Promise<string> {
  const c = new Redis(url);
  try {
    return String(await c.client('LIST'));
  } finally {
    c.disconnect();
  }
}

/** KEYS `pattern` on every master (a Cluster's KEYS reaches one node only). */
async function keysOnAllNodes(cluster: TestRedisCluster, pattern: string): Promise<string[]> {
  const out: string[] = [];
  for (const node of cluster.nodes) {
    const c = new Redis(node.url);
    try {
      out.push(...(await c.keys(pattern)));
    } finally {
      c.disconnect();
    }
  }
  return out;
}
