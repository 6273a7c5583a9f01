import Redis from 'ioredis';
import {
  CoordEvent,
  DeadLetterEntry,
  EnvelopeCodec,
  GROUPS,
  Keyspace,
  Schemas,
  newUlid,
} from '@coordbus/envelope';
import { BridgeSource, FsPollSource, StreamSource, StreamSourceOptions } from '@coordbus/event-source';
import { streamMetrics } from '@coordbus/redis-streams';
import { cleanupNamespace, testKeyspace, testRedisUrl, waitFor } from '@coordbus/testing';
import { Registry } from 'prom-client';
import { SyntheticCoordRoot } from './coord-root';

const codec = new EnvelopeCodec();

function event(i: number, source = 'coord'): CoordEvent {
  return {
    tx_id: newUlid(),
    tx_kind: 'dispatch.issue',
    ts: new Date().toISOString(),
    ingress_ts: null,
    source,
    session_id: `s${i}`,
    resource: null,
    payload: { order_id: `o${i}`, assignee: `s${i}`, ticket: `T-${i}` },
  } as CoordEvent;
}

describe('StreamSource (real Redis)', () => {
  let redis: Redis;
  let keyspace: Keyspace;
  const sources: StreamSource[] = [];
  const conns: Redis[] = [];

  const make = (options: Partial<StreamSourceOptions> = {}) => {
    const conn = new Redis(testRedisUrl());
    conns.push(conn);
    const s = new StreamSource({ redis: conn, keyspace, consumer: 'c1', blockMs: 50, ...options });
    sources.push(s);
    return s;
  };
  const publish = async (...events: CoordEvent[]) => {
    for (const e of events)
      await redis.xadd(keyspace.coordEvents, '*', ...codec.encode(Schemas.coordEvent, e));
  };
  const pendingCount = async () =>
    ((await redis.xpending(keyspace.coordEvents, GROUPS.sentinel)) as [number])[0];

  beforeEach(() => {
    redis = new Redis(testRedisUrl());
    keyspace = testKeyspace('stream-source');
  });
  afterEach(async () => {
    for (const s of sources.splice(0)) await s.close();
    for (const c of conns.splice(0)) c.disconnect();
    await cleanupNamespace(redis, keyspace);
    redis.disconnect();
  });

  it('removes consumers a gone sentinel left in its group (idle, nothing pending), never its own', async () => {
    const stream = keyspace.coordEvents;
    await redis.xgroup('CREATE', stream, GROUPS.sentinel, '0', 'MKSTREAM');
    await redis.xgroup('CREATECONSUMER', stream, GROUPS.sentinel, 'old-sentinel');
    const registry = new Registry();
    const removed: string[][] = [];
    const source = make({
      consumerIdleRemoveMs: 300,
      consumerSweepIntervalMs: 100,
      metrics: streamMetrics(registry),
      onConsumersRemoved: (names) => removed.push(names),
    });
    const names = async () =>
      ((await redis.xinfo('CONSUMERS', stream, GROUPS.sentinel)) as string[][]).map(
        (c) => c[c.indexOf('name') + 1],
      );
    await publish(event(1));
    await source.commit(await source.poll());
    await waitFor(
      async () => (await source.poll(), !(await names()).includes('old-sentinel')),
      'old-sentinel removed',
      20_000,
      20,
    );
    expect(await names()).toEqual(['c1']);
    expect(removed).toEqual([['old-sentinel']]);
    const text = await registry.metrics();
    expect(text).toContain(`coordbus_stream_consumers_removed_total{stream="${stream}",group="sentinel"} 1`);
  });

  it('returns published events in order, typed, and acks them on commit', async () => {
    const source = make();
    const events = [event(1), event(2), event(3)];
    await publish(...events);
    const got = await source.poll();
    expect(got.map((e) => e.tx_id)).toEqual(events.map((e) => e.tx_id));
    expect(got[0].payload).toEqual({ order_id: 'o1', assignee: 's1', ticket: 'T-1' });
    expect(await pendingCount()).toBe(3);
    await source.commit(got);
    expect(await pendingCount()).toBe(0);
    expect(await source.poll()).toEqual([]);
  });

  it('reads events written before the group existed', async () => {
    await publish(event(1));
    const source = make();
    expect(await source.poll()).toHaveLength(1);
  });

  it('is cancel-safe: an uncommitted poll is returned again, also to a restarted consumer', async () => {
    const source = make();
    await publish(event(1), event(2));
    const dropped = await source.poll();
    expect(dropped).toHaveLength(2);
    const again = await source.poll();
    expect(again.map((e) => e.tx_id)).toEqual(dropped.map((e) => e.tx_id));
    const restarted = make(); // same consumer name, new process
    const afterRestart = await restarted.poll();
    expect(afterRestart.map((e) => e.tx_id)).toEqual(dropped.map((e) => e.tx_id));
    await restarted.commit(afterRestart);
    expect(await pendingCount()).toBe(0);
  });

  it('is cancel-safe mid-flight: a poll abandoned while blocked loses nothing it read', async () => {
    const source = make({ blockMs: 1000 });
    await source.commit(await source.poll()); // group created, nothing pending
    const abandoned = source.poll(); // blocks in XREADGROUP; the caller walks away from it
    await new Promise((r) => setTimeout(r, 50));
    const e = event(7);
    await publish(e);
    const next = await source.poll(); // queued behind the abandoned one, then re-reads the PEL
    expect(next.map((x) => x.tx_id)).toEqual([e.tx_id]);
    expect((await abandoned).map((x) => x.tx_id)).toEqual([e.tx_id]); // what the dropped poll had taken
    await source.commit(next);
    expect(await pendingCount()).toBe(0);
  });

  it("reclaims a dead replica's pending events after claimIdleMs", async () => {
    const dead = make({ consumer: 'dead' });
    await publish(event(1), event(2));
    expect(await dead.poll()).toHaveLength(2); // then it dies without committing
    const alive = make({ consumer: 'alive', claimIdleMs: 100 });
    expect(await alive.poll()).toEqual([]); // not idle long enough yet
    await new Promise((r) => setTimeout(r, 150));
    let claimed: CoordEvent[] = [];
    for (let i = 0; i < 20 && !claimed.length; i++) claimed = await alive.poll();
    expect(claimed).toHaveLength(2);
    await alive.commit(claimed);
    expect(await pendingCount()).toBe(0);
  });

  it('dead-letters invalid entries with the reason and keeps going', async () => {
    const dead: DeadLetterEntry[] = [];
    const source = make({ onDeadLetter: (d) => dead.push(d) });
    await redis.xadd(keyspace.coordEvents, '*', 'type', 'coord-event', 'v', '1', 'data', '{"tx_id":"nope"}');
    await redis.xadd(keyspace.coordEvents, '*', 'type', 'coord-event', 'v', '9', 'data', '{}');
    await redis.xadd(keyspace.coordEvents, '*', 'garbage', 'x');
    await publish(event(1));
    const got = await source.poll();
    expect(got.map((e) => e.session_id)).toEqual(['s1']);
    expect(dead.map((d) => d.error_code)).toEqual(['Invalid', 'SchemaMismatch', 'Invalid']);
    const entries = await redis.xrange(keyspace.deadLetter(keyspace.coordEvents), '-', '+');
    expect(entries).toHaveLength(3);
    const first = codec.decode(Schemas.deadLetter, entries[0][1]);
    expect(first).toMatchObject({
      source_stream: keyspace.coordEvents,
      group: GROUPS.sentinel,
      consumer: 'c1',
    });
    expect(first.reason).toContain('tx_id');
    expect(first.fields.data).toBe('{"tx_id":"nope"}');
    await source.commit(got);
    expect(await pendingCount()).toBe(0);
  });

  it('dead-letters an event never committed after maxDeliveries', async () => {
    const dead: DeadLetterEntry[] = [];
    const source = make({ maxDeliveries: 3, onDeadLetter: (d) => dead.push(d) });
    await publish(event(1));
    for (let i = 0; i < 3; i++) expect(await source.poll()).toHaveLength(1);
    expect(await source.poll()).toEqual([]);
    expect(dead).toHaveLength(1);
    expect(dead[0].reason).toBe('not committed after 3 deliveries');
    expect(await pendingCount()).toBe(0);
  });

  it('returns events kept with retryLater (a dependency outage) without counting a delivery', async () => {
    const dead: DeadLetterEntry[] = [];
    const source = make({ maxDeliveries: 3, onDeadLetter: (d) => dead.push(d) });
    await publish(event(1), event(2));
    const first = await source.poll();
    expect(first).toHaveLength(2);
    // Ten failed rounds, far past maxDeliveries: still the same events, still one delivery each.
    for (let i = 0; i < 10; i++) {
      await source.retryLater(first);
      expect((await source.poll()).map((e) => e.tx_id)).toEqual(first.map((e) => e.tx_id));
    }
    const rows = (await redis.xpending(keyspace.coordEvents, GROUPS.sentinel, '-', '+', 10)) as Array<
      [string, string, number, number]
    >;
    expect(rows.map((r) => Number(r[3]))).toEqual([1, 1]);
    expect(dead).toEqual([]);
    await source.commit(first);
    expect(await pendingCount()).toBe(0);
    // A failure of the events themselves (no retryLater) still counts toward the dead letter.
    await publish(event(3));
    for (let i = 0; i < 3; i++) expect(await source.poll()).toHaveLength(1);
    expect(await source.poll()).toEqual([]);
    expect(dead).toHaveLength(1);
  });

  it('bounds a poll by maxBatch and reports the backlog', async () => {
    const source = make({ maxBatch: 4 });
    await publish(...Array.from({ length: 10 }, (_, i) => event(i)));
    const first = await source.poll();
    expect(first).toHaveLength(4);
    expect(await source.backlog()).toBe(6);
    await source.commit(first);
    expect(await source.poll()).toHaveLength(4);
  });

  it('recreates its consumer group when it vanishes', async () => {
    const source = make();
    await publish(event(1));
    await source.commit(await source.poll());
    await redis.xgroup('DESTROY', keyspace.coordEvents, GROUPS.sentinel);
    await publish(event(2));
    const got = await source.poll();
    expect(got.map((e) => e.session_id)).toContain('s2');
  });

  it('BridgeSource publishes what fs-poll sees onto the coord events stream', async () => {
    const root = new SyntheticCoordRoot();
    try {
      root.session('alpha');
      root.order('o1', 'alpha', 'T-1');
      const bridge = new BridgeSource(new FsPollSource({ root: root.root }), { keyspace, redis });
      const seen = await bridge.poll();
      await bridge.poll(); // not committed yet: returned again, but not published twice
      await bridge.commit(seen);
      const stream = make();
      const fromStream = await stream.poll();
      expect(fromStream.map((e) => [e.source, e.tx_id])).toEqual(seen.map((e) => [e.source, e.tx_id]));
      expect(fromStream.map((e) => e.tx_kind)).toEqual(['session.register', 'dispatch.issue']);
    } finally {
      root.dispose();
    }
  });
});
