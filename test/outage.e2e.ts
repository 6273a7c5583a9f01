import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { buildEnvelope, CoordStore, envelopeFields } from '@coordbus/coord';
import {
  CoordEvent,
  EnvelopeCodec,
  Keyspace,
  Schemas,
  SentinelObservation,
  TelemetryEvent,
} from '@coordbus/envelope';
import { ServiceProcess, startService, testKeyspace, TestRedisServer, waitFor } from '@coordbus/testing';

/**
 * Issue 13 §1 with real processes: Redis refusing writes (`maxmemory` + `noeviction`) for a few
 * seconds is an outage the sentinel, the fan-out and the log-tailer wait out — not-ready
 * meanwhile, nothing dead-lettered, nothing written past the limit, every event handled exactly
 * once afterwards. The Redis is this test's own (CONFIG SET on it).
 */
jest.setTimeout(240_000);
const codec = new EnvelopeCodec();

describe('a Redis outage is not a poison message (sentinel-subscriber on a Redis at maxmemory)', () => {
  let server: TestRedisServer;
  let redis: Redis;
  let ks: Keyspace;
  let sentinel: ServiceProcess | undefined;
  let fanout: ServiceProcess | undefined;
  let tailer: ServiceProcess | undefined;

  beforeAll(async () => {
    server = await new TestRedisServer({ args: ['--maxmemory-policy', 'noeviction'] }).start();
    redis = new Redis(server.url);
  });
  afterAll(async () => {
    await sentinel?.stop('SIGKILL').catch(() => undefined);
    await fanout?.stop('SIGKILL').catch(() => undefined);
    await tailer?.stop('SIGKILL').catch(() => undefined);
    redis.disconnect();
    await server.dispose();
  });

  const readyz = async () => (await fetch(`${sentinel!.url}/readyz`)).status;

  it('waits out ~4 s of OOM: /readyz 503 during, 200 after, nothing dead-lettered, every event observed once', async () => {
    ks = testKeyspace('outage');
    sentinel = await startService(
      'sentinel-subscriber',
      {
        REDIS_URL: server.url,
        COORDBUS_NAMESPACE: ks.namespace,
        SENTINEL_BLOCK_MS: '100',
        SENTINEL_MAX_DELIVERIES: '2',
        SENTINEL_CULL: 'false',
      },
      60_000,
    );
    await waitFor(async () => (await readyz()) === 200, 'sentinel ready', 30_000);

    // 30 coord events, and Redis starts refusing writes right behind them (same connection, in order).
    const store = new CoordStore(redis, { keyspace: ks });
    // One write first, so the script is loaded and the burst below is EVALSHA only.
    await store.register({ sessionId: 'warm-up', host: 'h', pid: 99 });
    const writes = Array.from({ length: 30 }, (_, i) =>
      store.register({ sessionId: `s-${i}`, host: 'h', pid: 100 + i }),
    );
    const oom = redis.config('SET', 'maxmemory', '1');
    await Promise.all(writes);
    await oom;
    const events: CoordEvent[] = (await redis.xrange(ks.coordEvents, '-', '+')).map(([, f]) =>
      codec.decode(Schemas.coordEvent, f),
    );
    expect(events).toHaveLength(31);

    // Meanwhile: not ready, nothing dead-lettered (the sentinel re-polls many times: none counts).
    await waitFor(async () => (await readyz()) === 503, 'sentinel not ready during the outage', 15_000);
    await new Promise((r) => setTimeout(r, 4000));
    expect(await readyz()).toBe(503);
    expect(await redis.exists(ks.deadLetter(ks.coordEvents))).toBe(0);

    await redis.config('SET', 'maxmemory', '0');
    const observed = async (): Promise<SentinelObservation[]> =>
      (await redis.xrange(ks.sentinelObservations, '-', '+')).map(([, f]) =>
        codec.decode(Schemas.observation, f),
      );
    await waitFor(async () => (await observed()).length >= 31, 'every event observed', 60_000);
    await waitFor(async () => (await readyz()) === 200, 'sentinel ready', 30_000);
    await new Promise((r) => setTimeout(r, 1000)); // a late duplicate would show up here
    const obs = await observed();
    expect(obs.map((o) => o.tx_id).sort()).toEqual(events.map((e) => e.tx_id).sort());
    expect(await redis.exists(ks.deadLetter(ks.coordEvents))).toBe(0);
    expect(await redis.exists(`${ks.deadLetter(ks.coordEvents)}:dead`)).toBe(0);
    expect(await redis.exists(ks.deadLetter(ks.sentinelObservations))).toBe(0);
  });

  it('fanout-publisher through ~4 s of OOM: every envelope on the replay stream exactly once, no dead letters', async () => {
    const fks = testKeyspace('outage-fanout');
    fanout = await startService(
      'fanout-publisher',
      { REDIS_URL: server.url, COORDBUS_NAMESPACE: fks.namespace, STREAM_MAX_DELIVERIES: '2' },
      60_000,
    );
    const ready = async () => (await fetch(`${fanout!.url}/readyz`)).status;
    await waitFor(async () => (await ready()) === 200, 'fanout ready', 30_000);

    // The fanout is paused while the envelopes land and Redis starts refusing writes, so every
    // one of them meets the outage (deterministic; the process itself is untouched otherwise).
    fanout.child.kill('SIGSTOP');
    for (let i = 0; i < 30; i++) {
      const env = buildEnvelope({ op: 'peers', session: `f-${i}` }, 'post', { durationMs: 1 });
      await redis.xadd(fks.coordIngest, '*', ...envelopeFields(env));
    }
    await redis.config('SET', 'maxmemory', '1');
    fanout.child.kill('SIGCONT');
    expect(await redis.xlen(fks.coordIngest)).toBe(30);

    // Its script is refused whole at maxmemory (`#!lua`: Redis checks OOM before the script runs,
    // not only up to its first write, which used to be the dedup-window trim that let the XADDs
    // through): the fan-out waits the outage out not ready, appends nothing, dead-letters nothing.
    await waitFor(async () => (await ready()) === 503, 'fanout not ready during the outage', 15_000);
    await new Promise((r) => setTimeout(r, 4000));
    expect(await ready()).toBe(503);
    expect(await redis.xlen(fks.coordReplay)).toBe(0);
    expect(await redis.exists(fks.deadLetter(fks.coordIngest))).toBe(0);

    await redis.config('SET', 'maxmemory', '0');
    const sessions = async () =>
      (await redis.xrange(fks.coordReplay, '-', '+')).map(([, f]) => {
        const d = JSON.parse(f[f.indexOf('data') + 1] ?? '{}') as { fields?: { session?: string } };
        return d.fields?.session ?? '?';
      });
    await waitFor(async () => (await sessions()).length >= 30, 'every envelope fanned out', 60_000);
    await waitFor(async () => (await ready()) === 200, 'fanout ready again', 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await sessions()).sort()).toEqual(Array.from({ length: 30 }, (_, i) => `f-${i}`).sort());
    expect(await redis.exists(fks.deadLetter(fks.coordIngest))).toBe(0);
    expect(await redis.exists(`${fks.deadLetter(fks.coordIngest)}:dead`)).toBe(0);
  });

  it('log-tailer through ~3 s of OOM: /readyz 503 while its writes are refused, 200 after, every line once', async () => {
    const tks = testKeyspace('outage-tailer');
    const dir = mkdtempSync(join(tmpdir(), 'outage-tailer-'));
    const logPath = join(dir, 'proxy.log');
    const pad = (n: number, w = 2) => String(n).padStart(w, '0');
    const line = (seq: number) => {
      const d = new Date();
      const asctime = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())},${pad(d.getMilliseconds(), 3)}`;
      return `${asctime} - headroom.proxy - INFO - [hr_${seq}] STAGE_TIMINGS {"event": "stage_timings", "request_id": "seq-${seq}", "stages": {"read_request_json": 1.0, "deep_copy": 0.1, "compression_first_stage": ${698 + seq}, "total_pre_upstream": ${700 + seq}}}\n`;
    };
    writeFileSync(logPath, '');
    writeFileSync(
      join(dir, 'tailer.yaml'),
      `targets:\n  - path: ${logPath}\n    source: headroom\n    event: headroom.overhead\n    threshold_ms: 500\n    quiet_ms: 60000\n    from_start: true\n`,
    );
    try {
      tailer = await startService(
        'log-tailer',
        { REDIS_URL: server.url, COORDBUS_NAMESPACE: tks.namespace, TAILER_CONFIG: join(dir, 'tailer.yaml') },
        60_000,
      );
      const ready = async () => (await fetch(`${tailer!.url}/readyz`)).status;
      await waitFor(async () => (await ready()) === 200, 'tailer ready', 30_000);
      const breaches = async () =>
        (await redis.xrange(tks.telemetryEvents, '-', '+'))
          .map(([, f]) => codec.decode(Schemas.telemetry, f) as TelemetryEvent)
          .filter((e) => e.detail.kind === 'breach')
          .map((e) => String(e.detail.request_id));
      for (let i = 1; i <= 10; i++) appendFileSync(logPath, line(i));
      await waitFor(async () => (await breaches()).length >= 10, 'the first lines emitted', 30_000);

      await redis.config('SET', 'maxmemory', '1');
      for (let i = 11; i <= 20; i++) appendFileSync(logPath, line(i));
      await waitFor(
        async () => (await ready()) === 503,
        'tailer not ready while Redis refuses writes',
        15_000,
      );
      await new Promise((r) => setTimeout(r, 3000));
      expect(await ready()).toBe(503);
      expect(await breaches()).toHaveLength(10);

      await redis.config('SET', 'maxmemory', '0');
      await waitFor(async () => (await ready()) === 200, 'tailer ready again', 30_000);
      await waitFor(
        async () => (await breaches()).length >= 20,
        'the lines written meanwhile emitted',
        30_000,
      );
      expect((await breaches()).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `seq-${i + 1}`).sort());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
