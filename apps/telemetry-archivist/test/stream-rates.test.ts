import Redis from 'ioredis';
import { Counter, Registry } from 'prom-client';
import { Keyspace } from '@coordbus/envelope';
import { cleanupNamespace, testKeyspace, testRedisUrl } from '@coordbus/testing';
import { ConsoleRedis } from '../src/console/console-redis';
import { StreamRates } from '../src/console/stream-rates.service';
import { archivedStreamRefs } from '../src/ingest/row-mapper';

jest.setTimeout(60_000);

/** Counts the Redis round trips of the sampler, to show one tick costs the same whatever the traffic. */
class CountingRedis extends ConsoleRedis {
  calls = 0;
  override async groupCounters(streams: string[]) {
    this.calls++;
    return super.groupCounters(streams);
  }
}

describe('stream health rates (real Redis)', () => {
  let redis: Redis;
  let ks: Keyspace;
  let consoleRedis: CountingRedis;
  let registry: Registry;
  let archived: Counter<'stream'>;
  let rates: StreamRates;

  beforeEach(() => {
    redis = new Redis(testRedisUrl());
    ks = testKeyspace('rates');
    consoleRedis = new CountingRedis(redis, ks);
    registry = new Registry();
    // The archivist's own counter, as ArchiveMetrics registers it.
    archived = new Counter({
      name: 'coordbus_archive_inserted_total',
      help: 'rows',
      labelNames: ['stream'],
      registers: [registry],
    });
    rates = new StreamRates(consoleRedis, registry, archivedStreamRefs(ks), { sampleMs: 60_000, keep: 5 });
  });

  afterEach(async () => {
    rates.beforeApplicationShutdown();
    await cleanupNamespace(redis, ks);
    redis.disconnect();
  });

  const add = async (stream: string, n: number) => {
    for (let i = 0; i < n; i++) await redis.xadd(stream, '*', 'i', String(i));
  };
  /** Reads `n` new entries in `group` and acks the first `ack` of them. */
  const consume = async (stream: string, group: string, n: number, ack: number) => {
    const res = (await redis.xreadgroup('GROUP', group, 'c1', 'COUNT', n, 'STREAMS', stream, '>')) as
      [string, [string, string[]][]][] | null;
    const ids = (res?.[0]?.[1] ?? []).map(([id]) => id);
    expect(ids).toHaveLength(n);
    if (ack) await redis.xack(stream, group, ...ids.slice(0, ack));
  };

  it('turns the streams’ and groups’ counters into per-second rates: added, delivered, acked, archived', async () => {
    const s = ks.coordEvents;
    await add(s, 5);
    await redis.xgroup('CREATE', s, 'sentinel', '0');
    await rates.sample();
    await add(s, 20);
    await consume(s, 'sentinel', 10, 4);
    archived.inc({ stream: 'coordEvents' }, 8);
    await rates.sample();
    await consume(s, 'sentinel', 15, 15);
    await rates.sample();

    const series = rates.series();
    expect(series.t).toHaveLength(2);
    // Times come from Redis TIME, so only ratios within one interval are exact.
    const ev = series.streams.coordEvents;
    const g = ev.groups.sentinel;
    // Between samples 1 and 2: 20 added, 10 delivered, 4 acked, 8 archived (same interval, so same ratio).
    expect(ev.added[0]! / g.delivered[0]!).toBeCloseTo(2);
    expect(g.delivered[0]! / g.acked[0]!).toBeCloseTo(10 / 4);
    expect(ev.archived![0]! / g.acked[0]!).toBeCloseTo(8 / 4);
    // Between 2 and 3: nothing added, 15 delivered and acked (the 6 read before stay pending).
    expect(ev.added[1]).toBe(0);
    expect(g.delivered[1]).toBeGreaterThan(0);
    expect(g.acked[1]! / g.delivered[1]!).toBeCloseTo(1);
    // A stream that does not exist has no counters: no rate, no error.
    expect(series.streams.jobEvents.added).toEqual([null, null]);
    expect(series.streams.jobEvents.groups).toEqual({});
    // The replay stream is not archived: no archived series.
    expect(series.streams.coordReplay.archived).toBeUndefined();
    // One pipeline per tick, whatever the traffic.
    expect(consoleRedis.calls).toBe(3);
  });

  it('a group that appears later, or a stream that is recreated, gives gaps rather than bogus rates', async () => {
    const s = ks.telemetryEvents;
    await add(s, 3);
    await rates.sample();
    await redis.xgroup('CREATE', s, 'archivist', '0');
    await consume(s, 'archivist', 3, 3);
    await rates.sample();
    await redis.del(s);
    await add(s, 1);
    await rates.sample();
    const ts = rates.series().streams.telemetryEvents;
    expect(ts.added[0]).toBe(0);
    expect(ts.groups.archivist.acked[0]).toBeNull(); // no counter before the group existed
    expect(ts.added[1]).toBeNull(); // entries-added went back: a new stream
    expect(ts.groups.archivist.acked[1]).toBeNull(); // the group went with the stream
  });

  it('keeps a bounded number of samples', async () => {
    for (let i = 0; i < 9; i++) await rates.sample();
    expect(rates.series().t).toHaveLength(5);
  });

  it('samples on its own timer once started, and stops on shutdown', async () => {
    const timed = new StreamRates(consoleRedis, registry, archivedStreamRefs(ks), { sampleMs: 20, keep: 5 });
    timed.onModuleInit();
    try {
      const deadline = Date.now() + 10_000;
      while (timed.series().t.length < 2 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect(timed.series().t.length).toBeGreaterThanOrEqual(2);
    } finally {
      timed.beforeApplicationShutdown();
    }
    const calls = consoleRedis.calls;
    await new Promise((r) => setTimeout(r, 100));
    expect(consoleRedis.calls).toBeLessThanOrEqual(calls + 1); // at most the one in flight
  });
});
