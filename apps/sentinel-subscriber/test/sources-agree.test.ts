import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { Registry } from 'prom-client';
import { CoordStore, FileMirror } from '@coordbus/coord';
import { EnvelopeCodec, Keyspace, Schemas, SentinelObservation } from '@coordbus/envelope';
import { FsPollSource, SentinelEventSource, StreamSource } from '@coordbus/event-source';
import { cleanupNamespace, REPO_ROOT, testKeyspace, testRedisUrl } from '@coordbus/testing';
import pino from 'pino';
import { CullService } from '../src/cull.service';
import { SentinelMetrics } from '../src/metrics';
import { ObservationRepository } from '../src/observations/observation.repository';
import { SentinelService } from '../src/sentinel.service';

const run = promisify(execFile);
const codec = new EnvelopeCodec();

/**
 * The seed's "byte-identical soak" as a bounded test: one scripted sequence of coord operations,
 * run through the real `coord` CLI with COORD_ROOT dual-write on, observed once through the
 * stream source and once through the fs-poll source. Both must yield the same observations
 * (everything but `source`, `tx_id` and times).
 */
describe('stream source and fs-poll source agree (real coord CLI)', () => {
  let redis: Redis;
  let keyspace: Keyspace;
  let root: string;
  let service: SentinelService;
  let fs: FsPollSource;
  jest.setTimeout(120_000);

  const coord = async (session: string, ...args: string[]) => {
    await run(process.execPath, [join(REPO_ROOT, 'bin', 'coord'), ...args], {
      env: {
        ...process.env,
        REDIS_URL: testRedisUrl(),
        COORDBUS_NAMESPACE: keyspace.namespace,
        COORD_ROOT: root,
        COORD_SESSION_ID: session,
        COORD_PID: String(1000 + session.length),
        LOGS_COORD_DISABLED: '1',
      },
    });
  };
  const drain = async (source: SentinelEventSource) => {
    for (;;) {
      const events = await source.poll();
      if (!events.length) return;
      for (const e of events) await service.handleEvent(e);
      await source.commit(events);
    }
  };
  const observed = async (sources: string[]) =>
    (await redis.xrange(keyspace.sentinelObservations, '-', '+'))
      .map(([, f]) => codec.decode(Schemas.observation, f))
      .filter((o) => sources.includes(o.source));
  const comparable = (obs: SentinelObservation[]) =>
    obs.map((o) => `${o.kind} | ${o.session_id} | ${o.resource} | ${o.summary}`).sort();

  beforeEach(() => {
    redis = new Redis(testRedisUrl());
    keyspace = testKeyspace('agree');
    root = mkdtempSync(join(tmpdir(), 'coordbus-agree-'));
    const repo = new ObservationRepository(redis, keyspace, { dedupTtlMs: 600_000, maxLen: 100_000 });
    service = new SentinelService(repo, new SentinelMetrics(new Registry()));
  });
  afterEach(async () => {
    await cleanupNamespace(redis, keyspace);
    redis.disconnect();
    rmSync(root, { recursive: true, force: true });
  });

  async function compareThroughStream(fsSources: string[], streamSources: string[]) {
    const conn = new Redis(testRedisUrl());
    const stream = new StreamSource({ redis: conn, keyspace, consumer: 'agree', blockMs: 20 });
    try {
      await drain(stream);
    } finally {
      await stream.close();
      conn.disconnect();
    }
    const viaFs = comparable(await observed(fsSources));
    const viaStream = comparable(await observed(streamSources));
    expect(viaFs.length).toBeGreaterThan(0);
    expect(viaFs).toEqual(viaStream);
    return viaStream;
  }

  it('a scripted session of every op kind', async () => {
    fs = new FsPollSource({ root });
    // fs-poll flattens what happens between ticks, so it ticks after every operation.
    const step = async (session: string, ...args: string[]) => {
      await coord(session, ...args);
      await drain(fs);
    };
    await step('alpha', 'register', '--task', 'T1', '--role', 'worker', '--blob', '{"x":1}');
    await step('beta', 'register', '--task', 'T2', '--role', 'reviewer');
    await step('alpha', 'heartbeat', '--phase', 'build');
    await step('alpha', 'lock', 'repo', '--reason', 'migrate');
    await step('alpha', 'lock', 'db/main', '--ttl', '600');
    await step('beta', 'send', 'alpha', 'the body never travels', '--kind', 'review', '--subject', 'PR7');
    await step('alpha', 'dispatch', 'beta', '--ticket', 'TOD-9', '--order-id', 'ord-1');
    await step('alpha', 'unlock', 'repo');
    await step('beta', 'steal', 'db/main', '--force');
    await step('beta', 'heartbeat', '--phase', 'review');
    await step('alpha', 'heartbeat', '--phase', 'done');
    await step('alpha', 'dereg');
    await step('beta', 'lock', 'docs');
    await step('beta', 'dereg');
    const obs = await compareThroughStream(['fs-poll'], ['coord']);
    // 2 register, 3 heartbeat, 4 acquire, 4 release, 1 inbox, 1 dispatch, 2 dereg
    expect(obs).toHaveLength(17);
    expect(obs).toContain('lock.release | alpha | db/main | alpha released lock db/main (stolen)');
    expect(obs).toContain('lock.release | beta | docs | beta released lock docs (owner-dereg)');
    expect(
      obs.filter((o) =>
        /^inbox\.deliver \| alpha \| null \| review \w{26} delivered to alpha from beta$/.test(o),
      ),
    ).toHaveLength(1);
  });

  it('a cull: ttl-expired dereg and owner-evicted releases', async () => {
    const ttlMs = 1000;
    fs = new FsPollSource({ root, sessionTtlMs: ttlMs });
    await coord('gamma', 'register', '--task', 'T3');
    await coord('gamma', 'lock', 'build-cache');
    await drain(fs);
    await new Promise((r) => setTimeout(r, ttlMs + 200));
    const store = new CoordStore(redis, {
      keyspace,
      source: 'sentinel',
      mirror: new FileMirror(root),
    });
    const culled = await new CullService(
      store,
      ttlMs,
      new SentinelMetrics(new Registry()),
      pino({ level: 'silent' }),
    ).cullOnce();
    expect(culled.evicted).toEqual(['gamma']);
    await drain(fs);
    const obs = await compareThroughStream(['fs-poll'], ['coord', 'sentinel']);
    expect(obs).toEqual([
      'lock.acquire | gamma | build-cache | gamma acquired lock build-cache',
      'lock.release | gamma | build-cache | gamma released lock build-cache (owner-evicted)',
      'session.dereg | gamma | null | session gamma deregistered (ttl-expired)',
      'session.register | gamma | null | session gamma registered (role -, task T3)',
    ]);
  });
});
