import Redis from 'ioredis';
import pino from 'pino';
import { Registry } from 'prom-client';
import { CoordStore } from '@coordbus/coord';
import {
  CoordEvent,
  EnvelopeCodec,
  Keyspace,
  newUlid,
  Schemas,
  SentinelObservation,
} from '@coordbus/envelope';
import { InMemorySource, StreamSource } from '@coordbus/event-source';
import { cleanupNamespace, testKeyspace, testRedisUrl, waitFor } from '@coordbus/testing';
import { CullService } from '../src/cull.service';
import { SentinelMetrics } from '../src/metrics';
import { ObservationRepository } from '../src/observations/observation.repository';
import { SentinelLoop } from '../src/sentinel.loop';
import { SentinelService } from '../src/sentinel.service';

const codec = new EnvelopeCodec();
const logger = pino({ level: 'silent' });

function ev(i: number, kind: CoordEvent['tx_kind'] = 'dispatch.issue', source = 'coord'): CoordEvent {
  return {
    tx_id: newUlid(),
    tx_kind: kind,
    ts: new Date(Date.now() - 50).toISOString(),
    ingress_ts: null,
    source,
    session_id: `s${i}`,
    resource: null,
    payload: { order_id: `o${i}`, assignee: `s${i}`, ticket: `T-${i}` },
  } as CoordEvent;
}

describe('sentinel business logic (real Redis)', () => {
  let redis: Redis;
  let keyspace: Keyspace;

  const replica = () => {
    const registry = new Registry();
    const metrics = new SentinelMetrics(registry);
    const repo = new ObservationRepository(redis, keyspace, { dedupTtlMs: 60_000, maxLen: 100_000 });
    return { registry, metrics, service: new SentinelService(repo, metrics) };
  };
  const observations = async (): Promise<SentinelObservation[]> =>
    (await redis.xrange(keyspace.sentinelObservations, '-', '+')).map(([, f]) =>
      codec.decode(Schemas.observation, f),
    );

  beforeEach(() => {
    redis = new Redis(testRedisUrl());
    keyspace = testKeyspace('sentinel');
  });
  afterEach(async () => {
    await cleanupNamespace(redis, keyspace);
    redis.disconnect();
  });

  it('writes one valid observation per event, stamps ingress_ts, and drops duplicates', async () => {
    const { service, registry } = replica();
    const e = ev(1);
    expect(await service.handleEvent(e)).toBe('observed');
    expect(e.ingress_ts).not.toBeNull();
    expect(await service.handleEvent({ ...e })).toBe('duplicate');
    const obs = await observations();
    expect(obs).toEqual([
      {
        ts: e.ts,
        session_id: 's1',
        kind: 'dispatch.issue',
        resource: null,
        summary: 'order o1 (ticket T-1) dispatched to s1',
        tx_id: e.tx_id,
        source: 'coord',
      },
    ]);
    const text = await registry.metrics();
    expect(text).toContain('coordbus_sentinel_events_handled_total{kind="dispatch.issue"} 1');
    expect(text).toContain('coordbus_sentinel_duplicates_dropped_total{kind="dispatch.issue"} 1');
  });

  it('dedups on (source, tx_id): the same tx_id from another source is a different event', async () => {
    const { service } = replica();
    const a = ev(1);
    expect(await service.handleEvent(a)).toBe('observed');
    expect(await service.handleEvent({ ...a, source: 'fs-poll' })).toBe('observed');
    expect(await observations()).toHaveLength(2);
  });

  it('handles a batch in one go with the outcome handleEvent gives each event', async () => {
    const { service, registry } = replica();
    const seen = ev(0);
    expect(await service.handleEvent(seen)).toBe('observed');
    const culled = {
      ...ev(1, 'session.dereg'),
      payload: { reason: 'ttl-expired' },
    } as unknown as CoordEvent;
    const fresh = ev(2);
    const bad = { ...ev(3), ts: 'yesterday' } as CoordEvent; // its observation fails validation
    const results = await service.handleEvents([{ ...seen }, culled, fresh, { ...fresh }, bad]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : 'rejected'))).toEqual([
      'duplicate',
      'observed',
      'observed',
      'duplicate',
      'rejected',
    ]);
    expect(String((results[4] as PromiseRejectedResult).reason)).toMatch(/ts/);
    expect((await observations()).map((o) => o.tx_id)).toEqual([seen.tx_id, culled.tx_id, fresh.tx_id]);
    // The cull also reached the live views, once, as handleEvent puts it there.
    const live = await redis.xrange(keyspace.coordIngest, '-', '+');
    expect(live.map(([, f]) => codec.decode(Schemas.coordOp, f).target)).toEqual(['coord::cull']);
    expect(await service.handleEvents([{ ...culled }])).toEqual([
      { status: 'fulfilled', value: 'duplicate' },
    ]);
    expect(await redis.xlen(keyspace.coordIngest)).toBe(1);
    const text = await registry.metrics();
    expect(text).toContain('coordbus_sentinel_events_handled_total{kind="dispatch.issue"} 2');
    expect(text).toContain('coordbus_sentinel_duplicates_dropped_total{kind="dispatch.issue"} 2');
  });

  it('three replicas racing on the same 200 events write each observation exactly once', async () => {
    const events = Array.from({ length: 200 }, (_, i) => ev(i));
    const replicas = [replica(), replica(), replica()];
    const outcomes = await Promise.all(
      replicas.map((r) => Promise.all(events.map((e) => r.service.handleEvent({ ...e })))),
    );
    const observed = outcomes.flat().filter((o) => o === 'observed').length;
    expect(observed).toBe(200);
    const obs = await observations();
    expect(obs).toHaveLength(200);
    expect(new Set(obs.map((o) => o.tx_id)).size).toBe(200);
  });

  it('three replicas racing with whole batches (one script call each) write each observation exactly once', async () => {
    const events = Array.from({ length: 200 }, (_, i) => ev(i));
    const replicas = [replica(), replica(), replica()];
    // Overlapping, differently cut batches: each replica's calls interleave with the others'.
    const outcomes = await Promise.all(
      replicas.map(async (r, k) => {
        const out: string[] = [];
        for (let at = 0; at < events.length; at += 30 + k * 7) {
          const batch = events.slice(at, at + 30 + k * 7).map((e) => ({ ...e }));
          for (const res of await r.service.handleEvents(batch)) {
            out.push(res.status === 'fulfilled' ? res.value : 'rejected');
          }
        }
        return out;
      }),
    );
    expect(outcomes.flat().filter((o) => o === 'rejected')).toEqual([]);
    expect(outcomes.flat().filter((o) => o === 'observed')).toHaveLength(200);
    const obs = await observations();
    expect(obs).toHaveLength(200);
    expect(new Set(obs.map((o) => o.tx_id)).size).toBe(200);
  });

  it('the loop polls, handles and commits; an event whose handling failed is retried, once observed', async () => {
    const source = new InMemorySource('in-memory', { maxBatch: 10 });
    const { service, metrics } = replica();
    let failOnce = true;
    // The real service's batch handling, with s3's first handling failing on its own.
    const flaky = {
      handleEvents: async (events: CoordEvent[]) => {
        const failing = failOnce ? events.find((e) => e.session_id === 's3') : undefined;
        if (failing) failOnce = false;
        const rest = await service.handleEvents(events.filter((e) => e !== failing));
        return events.map((e) =>
          e === failing ? { status: 'rejected', reason: new Error('redis hiccup') } : rest.shift()!,
        );
      },
    } as unknown as SentinelService;
    const loop = new SentinelLoop(source, flaky, metrics, logger, { idleDelayMs: 5, maxBatch: 10 });
    source.push(...Array.from({ length: 25 }, (_, i) => ev(i, 'dispatch.issue', 'in-memory')));
    loop.start();
    await waitFor(() => source.pending === 0, 'the loop to drain the source');
    await loop.stop();
    const obs = await observations();
    expect(obs.map((o) => o.session_id).sort()).toEqual(Array.from({ length: 25 }, (_, i) => `s${i}`).sort());
    expect(failOnce).toBe(false); // s3 did fail once, and was retried
  });

  it('the loop survives a failing source and resumes', async () => {
    const inner = new InMemorySource();
    let failures = 2;
    const source = Object.assign(Object.create(inner) as InMemorySource, {
      poll: async () => {
        if (failures-- > 0) throw new Error('coord root unreadable');
        return inner.poll();
      },
    });
    const { service, metrics, registry } = replica();
    const loop = new SentinelLoop(source, service, metrics, logger, {
      idleDelayMs: 5,
      maxBatch: 10,
      maxBackoffMs: 20,
    });
    inner.push(ev(1, 'dispatch.issue', 'in-memory'));
    loop.start();
    await waitFor(() => inner.pending === 0, 'recovery after failed polls');
    await loop.stop();
    expect(await registry.metrics()).toContain('coordbus_sentinel_poll_errors_total{source="in-memory"} 2');
  });

  describe('liveness culling', () => {
    // Long enough that a loaded machine does not starve the heartbeating session past it.
    const TTL = 1000;
    const store = () => new CoordStore(redis, { keyspace });
    const culler = (metrics = replica().metrics) => new CullService(store(), TTL, metrics, logger);

    it('evicts an idle session (dereg ttl-expired, its locks released owner-evicted) and never a heartbeating one', async () => {
      const s = store();
      await s.register({ sessionId: 'idle', host: 'h', pid: 1 });
      await s.register({ sessionId: 'busy', host: 'h', pid: 2 });
      await s.lock('idle', 'repo');
      await s.lock('idle', 'docs');
      await s.lock('busy', 'ci');
      const c = culler();
      const deadline = Date.now() + TTL * 2.5;
      const evicted: string[] = [];
      while (Date.now() < deadline) {
        await s.heartbeat('busy');
        evicted.push(...(await c.cullOnce()).evicted);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(evicted).toEqual(['idle']);
      expect((await s.locks()).map((l) => l.resource)).toEqual(['ci']);
      const events = (await redis.xrange(keyspace.coordEvents, '-', '+')).map(([, f]) =>
        codec.decode(Schemas.coordEvent, f),
      );
      const culled = events.filter((e) => e.tx_kind === 'session.dereg' || e.tx_kind === 'lock.release');
      expect(
        culled.map((e) => [e.tx_kind, e.session_id, e.resource, (e.payload as { reason: string }).reason]),
      ).toEqual([
        ['session.dereg', 'idle', null, 'ttl-expired'],
        ['lock.release', 'idle', 'docs', 'owner-evicted'],
        ['lock.release', 'idle', 'repo', 'owner-evicted'],
      ]);
      await s.lock('busy', 'repo'); // free to take
    });

    it('with no SENTINEL_CULL_INTERVAL_MS it follows the stored TTL: set to 1 s later, culls within seconds, not at the 30 s interval it started with', async () => {
      const s = store();
      await s.setSessionTtl(300_000);
      await s.register({ sessionId: 'quiet', host: 'h', pid: 1 });
      const c = new CullService(s, undefined, replica().metrics, logger);
      c.start(30_000, true);
      try {
        await s.setSessionTtl(TTL);
        await waitFor(
          async () => (await redis.exists(keyspace.coordKey('session:quiet'))) === 0,
          'quiet culled',
          15_000,
          100,
        );
      } finally {
        await c.stop();
      }
    });

    it('three replicas culling 30 idle sessions: each culled exactly once', async () => {
      const s = store();
      for (let i = 0; i < 30; i++) {
        await s.register({ sessionId: `s${i}`, host: 'h', pid: i });
        await s.lock(`s${i}`, `r${i}`);
      }
      await new Promise((r) => setTimeout(r, TTL + 50));
      const results = await Promise.all([culler(), culler(), culler()].map((c) => c.cullOnce()));
      const all = results.flatMap((r) => r.evicted);
      expect(all.sort()).toEqual(Array.from({ length: 30 }, (_, i) => `s${i}`).sort());
      expect(results.reduce((n, r) => n + r.locksReleased, 0)).toBe(30);
      expect(await s.locks()).toEqual([]);
    });

    it('culls flow through the stream source into observations', async () => {
      const s = store();
      await s.register({ sessionId: 'gone', host: 'h', pid: 1 });
      await s.lock('gone', 'repo');
      await new Promise((r) => setTimeout(r, TTL + 50));
      await culler().cullOnce();
      const conn = new Redis(testRedisUrl());
      const source = new StreamSource({ redis: conn, keyspace, consumer: 'c', blockMs: 20 });
      const { service } = replica();
      for (const e of await source.poll()) await service.handleEvent(e);
      await source.close();
      conn.disconnect();
      expect((await observations()).map((o) => o.summary)).toEqual([
        'session gone registered (role -, task -)',
        'gone acquired lock repo',
        'session gone deregistered (ttl-expired)',
        'gone released lock repo (owner-evicted)',
      ]);
    });
  });
});
