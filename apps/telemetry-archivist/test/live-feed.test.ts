import Redis from 'ioredis';
import pino from 'pino';
import { CoordStore } from '@coordbus/coord';
import { Keyspace } from '@coordbus/envelope';
import { cleanupNamespace, testKeyspace, testRedisUrl, waitFor } from '@coordbus/testing';
import { ConsoleRedis } from '../src/console/console-redis';
import type { FeedItem } from '../src/console/console-views';
import { FeedCursor, parseCursor } from '../src/console/feed-cursor';
import { DEFAULT_LIVE_FEED_OPTIONS, FeedSink, LiveFeed } from '../src/console/live-feed.service';

jest.setTimeout(60_000);

/** A feed client that parses what the service would write to an SSE response. */
class RecordingSink implements FeedSink {
  readonly events: { id: string; event: string; data: unknown }[] = [];
  closed = false;
  buffered = 0;
  write(chunk: string): boolean {
    const id = /^id: (.*)$/m.exec(chunk)?.[1] ?? '';
    const event = /^event: (.*)$/m.exec(chunk)?.[1] ?? '';
    const data = JSON.parse(/^data: (.*)$/m.exec(chunk)?.[1] ?? 'null') as unknown;
    this.events.push({ id, event, data });
    return true;
  }
  close(): void {
    this.closed = true;
  }
  get items(): FeedItem[] {
    return this.events.filter((e) => e.event === 'batch').flatMap((e) => e.data as FeedItem[]);
  }
  get lastId(): string {
    return this.events[this.events.length - 1]?.id ?? '';
  }
}

/** Counts what the feed asks of Redis, so a test can show the work per poll is bounded. */
class CountingRedis extends ConsoleRedis {
  calls = 0;
  returned = 0;
  override async after(...a: Parameters<ConsoleRedis['after']>) {
    this.calls++;
    const r = await super.after(...a);
    this.returned += r.length;
    return r;
  }
  override async heartbeatsSince(...a: Parameters<ConsoleRedis['heartbeatsSince']>) {
    this.calls++;
    const r = await super.heartbeatsSince(...a);
    this.returned += r.length;
    return r;
  }
  override async inboxDepths(sessions: string[]) {
    if (sessions.length) this.calls++;
    return super.inboxDepths(sessions);
  }
  override async hashes(keys: string[]) {
    if (keys.length) this.calls++;
    return super.hashes(keys);
  }
}

describe('console live feed (real Redis)', () => {
  let redis: Redis;
  let ks: Keyspace;
  let store: CoordStore;
  let consoleRedis: CountingRedis;
  let feed: LiveFeed;

  beforeEach(async () => {
    redis = new Redis(testRedisUrl());
    ks = testKeyspace('feed');
    store = new CoordStore(redis, { keyspace: ks });
    consoleRedis = new CountingRedis(redis, ks);
    feed = new LiveFeed(consoleRedis, pino({ level: 'silent' }), {
      ...DEFAULT_LIVE_FEED_OPTIONS,
      pollMs: 20,
    });
    feed.onModuleInit();
    await feed.cursor();
  });

  afterEach(async () => {
    feed.beforeApplicationShutdown();
    await cleanupNamespace(redis, ks);
    redis.disconnect();
  });

  const activity = (session: string, n: number) =>
    redis.xadd(
      ks.activityStream,
      '*',
      'type',
      'agent-activity',
      'v',
      '1',
      'data',
      JSON.stringify({
        session_id: session,
        event: 'PostToolUse',
        tool: 'Edit',
        path: `f${n}.ts`,
        ts: new Date().toISOString(),
      }),
    );

  /** The stream items (not heartbeats) a sink got, as `<stream>/<id>`. */
  const ids = (sink: RecordingSink) => sink.items.filter((i) => i.k !== 'hb').map((i) => `${i.s}/${i.id}`);

  it('a reconnecting client gets exactly what it missed, across streams, then live entries once', async () => {
    const start = await feed.cursor();
    await store.register({ sessionId: 'a', host: 'h', pid: 1, role: 'dev', task: 'T-1' });
    await store.lock('a', 'src/x.ts');
    for (let i = 0; i < 3; i++) await activity('a', i);

    const first = new RecordingSink();
    const stop1 = await feed.connect(first, start);
    await waitFor(() => ids(first).length === 5, 'the first five items', 5000, 10);
    const register = first.items.find((i) => i.k === 'session.register');
    // The register event is joined with the session's host (the event does not carry it) and no blob.
    expect(register).toMatchObject({
      session: 'a',
      role: 'dev',
      task: 'T-1',
      session_view: { host: 'h', pid: 1 },
    });
    const seenFirst = ids(first);
    const resumeAt = first.lastId;
    stop1();

    // Missed while disconnected: four streams.
    await store.send('a', 'a', 'hello');
    await store.unlock('a', 'src/x.ts');
    for (let i = 3; i < 6; i++) await activity('a', i);
    await redis.xadd(
      ks.auditStream,
      '*',
      'type',
      'console-audit',
      'v',
      '1',
      'data',
      JSON.stringify({ action: 'x', ts: 't' }),
    );
    const missedCount = 6;

    const second = new RecordingSink();
    const stop2 = await feed.connect(second, parseCursor(resumeAt) as FeedCursor);
    await waitFor(() => ids(second).length >= missedCount, 'the missed items', 5000, 10);
    // Live after the catch-up:
    for (let i = 6; i < 9; i++) await activity('a', i);
    await waitFor(() => ids(second).length >= missedCount + 3, 'the live items', 5000, 10);
    await new Promise((r) => setTimeout(r, 200));
    stop2();

    const got = ids(second);
    expect(new Set(got).size).toBe(got.length);
    expect(got).toHaveLength(missedCount + 3);
    expect(got.filter((g) => seenFirst.includes(g))).toEqual([]);
    expect(second.items.map((i) => i.k).filter((k) => k !== 'hb')).toEqual([
      'inbox.deliver',
      'lock.release',
      'activity',
      'activity',
      'activity',
      'audit',
      'activity',
      'activity',
      'activity',
    ]);
    // Exactly the entries on the streams after the resume point, in stream order.
    const allActivity = (await redis.xrange(ks.activityStream, '-', '+')).map(([id]) => `ac/${id}`);
    expect(got.filter((g) => g.startsWith('ac/'))).toEqual(allActivity.slice(3));
  });

  it('a client further behind than a page can replay is told to reload, not given a partial history', async () => {
    const start = await feed.cursor();
    const pipe = redis.pipeline();
    for (let i = 0; i < DEFAULT_LIVE_FEED_OPTIONS.catchUpMax + 1; i++)
      pipe.xadd(ks.activityStream, '*', 'type', 'agent-activity', 'v', '1', 'data', '{}');
    await pipe.exec();
    const sink = new RecordingSink();
    const stop = await feed.connect(sink, start);
    stop();
    expect(sink.events[0]).toMatchObject({ event: 'reset' });
    expect(parseCursor(sink.events[0].id)).not.toBeNull();
  });

  it('polling an idle fleet of 1 000 sessions costs the same few commands as an empty one, and reads nothing', async () => {
    const pipe = redis.pipeline();
    for (let i = 0; i < 1000; i++) {
      pipe.hset(ks.coordKey(`session:s${i}`), 'session_id', `s${i}`, 'host', 'h', 'pid', '1');
      pipe.zadd(ks.coordKey('sessions'), Date.now() - 10_000, `s${i}`);
    }
    await pipe.exec();
    const sink = new RecordingSink();
    const stop = await feed.connect(sink, null);
    await new Promise((r) => setTimeout(r, 100));
    consoleRedis.calls = 0;
    consoleRedis.returned = 0;
    await new Promise((r) => setTimeout(r, 500));
    stop();
    const polls = consoleRedis.calls / 12; // 11 streams + the heartbeat zset per poll
    expect(polls).toBeGreaterThan(5);
    expect(consoleRedis.calls % 12).toBe(0);
    expect(consoleRedis.returned).toBe(0);
    expect(sink.items).toEqual([]);

    // One heartbeat: one session comes back, with its inbox depth, and nothing else.
    await store.register({ sessionId: 'live-1', host: 'h', pid: 2 });
    await store.send('live-1', 'live-1', 'x');
    await store.heartbeat('live-1');
    const again = new RecordingSink();
    const stop2 = await feed.connect(again, null);
    await waitFor(() => again.items.some((i) => i.k === 'hb'), 'a heartbeat item', 5000, 10);
    stop2();
    const hb = again.items.find((i) => i.k === 'hb') as FeedItem & { sessions: [string, number, number][] };
    expect(hb.sessions.map(([s, , depth]) => [s, depth])).toEqual([['live-1', 1]]);
  });
});
