import { BeforeApplicationShutdown, Inject, Injectable, OnModuleInit } from '@nestjs/common';
import type { Logger } from 'pino';
import { LOGGER } from '@coordbus/runtime';
import { ConsoleRedis } from './console-redis';
import { FeedItem, RawEntry, feedItem, sessionView } from './console-views';
import { FEED_STREAM_KEYS, FeedCursor, FeedStreamKey, compareIds, formatCursor } from './feed-cursor';

/** Where a client's feed goes: an SSE response in the service, anything in a test. */
export interface FeedSink {
  /** Writes one chunk; false when the client is not keeping up (its buffer is full). */
  write(chunk: string): boolean;
  /** Bytes written but not yet sent. */
  readonly buffered: number;
  close(): void;
}

interface Client {
  sink: FeedSink;
  cursor: FeedCursor;
  /** Batches that arrived while the client was catching up; null once it is live. */
  queue: Tick[] | null;
}

/** What one read of every stream returned, and where each stream's read ended. */
interface Tick {
  entries: Partial<Record<FeedStreamKey, RawEntry[]>>;
  ends: Record<FeedStreamKey, string>;
  heartbeats: [string, number, number][];
  hbEnd: number;
  /** Session views for `session.register` entries (host, pid, heartbeat: not in the event). */
  registered: Map<string, Record<string, unknown>>;
  /** Who holds the resource of each failed lock op (the op's envelope names only the caller). */
  holders: Map<string, string>;
}

export interface LiveFeedOptions {
  /** How often the one shared reader polls the streams (ms). */
  pollMs: number;
  /** Most entries read per stream per poll. */
  readCount: number;
  /** Most entries a reconnecting client may have missed per stream before it is told to reload. */
  catchUpMax: number;
  /** Most live clients; more are refused with 503. */
  maxClients: number;
  /** A client whose unsent buffer passes this is dropped (it reconnects and resumes). */
  maxBufferedBytes: number;
}

export const LIVE_FEED_OPTIONS = Symbol('LIVE_FEED_OPTIONS');
export const DEFAULT_LIVE_FEED_OPTIONS: LiveFeedOptions = {
  pollMs: 250,
  readCount: 500,
  catchUpMax: 5000,
  maxClients: 200,
  maxBufferedBytes: 8 * 1024 * 1024,
};

const maxId = (a: string, b: string) => (compareIds(a, b) >= 0 ? a : b);

/**
 * The console's live feed: ONE reader per process polls each followed stream from where it left
 * off (non-blocking XREAD, COUNT-bounded) and the heartbeat zset by score, and fans the result
 * out to every connected browser. Work per poll depends on what changed, never on the fleet size
 * or the number of clients (beyond writing to them).
 *
 * Resume is exact: each SSE event id is the feed cursor after it. A reconnecting client's cursor
 * is read back (`Last-Event-ID`); it is queued for live batches first, then reads what it missed
 * by id from each stream (XREAD after its cursor), then gets the queued batches minus what the
 * catch-up already held. Nothing between is lost, nothing is sent twice.
 */
@Injectable()
export class LiveFeed implements OnModuleInit, BeforeApplicationShutdown {
  private readonly clients = new Set<Client>();
  private position: FeedCursor | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private failing = false;
  private readyWaiters: (() => void)[] = [];
  /** Every open SSE response (the feed's and job logs'): ended before the HTTP server closes. */
  private readonly open = new Set<{ end(): void }>();

  constructor(
    private readonly redis: ConsoleRedis,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(LIVE_FEED_OPTIONS) private readonly options: LiveFeedOptions,
  ) {}

  onModuleInit(): void {
    this.schedule(0);
  }

  /**
   * Runs before Nest closes the HTTP server, which waits for open connections: SSE responses
   * never end on their own, so they are ended here (browsers reconnect to another replica).
   */
  beforeApplicationShutdown(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const c of this.clients) c.sink.close();
    this.clients.clear();
    for (const r of this.open) r.end();
    this.open.clear();
  }

  /** Tracks an SSE response so shutdown can end it; returns the untrack function. */
  track(res: { end(): void }): () => void {
    if (this.stopped) {
      res.end();
      return () => undefined;
    }
    this.open.add(res);
    return () => this.open.delete(res);
  }

  get stopping(): boolean {
    return this.stopped;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** The reader's current position (waits for the first one); a snapshot starts from here. */
  async cursor(): Promise<FeedCursor> {
    if (!this.position) await new Promise<void>((r) => this.readyWaiters.push(r));
    const p = this.position as FeedCursor;
    return { ids: { ...p.ids }, hb: p.hb };
  }

  /**
   * The streams' tails as they are now, read from Redis rather than from the reader's last poll
   * (which lags by up to one poll interval): a snapshot taken after this read already shows what
   * came before it, so the feed resumes with no event the page has.
   */
  async freshCursor(): Promise<FeedCursor> {
    const [ids, now] = await Promise.all([this.redis.tails(), this.redis.time()]);
    return { ids, hb: now - 1 };
  }

  /**
   * Adds a client resuming after `from` (null: from now). Resolves once it is live; throws when
   * the feed is full.
   */
  async connect(sink: FeedSink, from: FeedCursor | null): Promise<() => void> {
    if (this.clients.size >= this.options.maxClients) {
      throw new Error(`the live feed has ${this.clients.size} clients already (the most it serves)`);
    }
    const start = from ?? (await this.cursor());
    const client: Client = { sink, cursor: { ids: { ...start.ids }, hb: start.hb }, queue: [] };
    this.clients.add(client);
    const disconnect = () => {
      this.clients.delete(client);
    };
    try {
      await this.catchUp(client);
    } catch (err) {
      disconnect();
      throw err;
    }
    const queued = client.queue ?? [];
    client.queue = null;
    for (const tick of queued) this.deliver(client, tick);
    return disconnect;
  }

  private async catchUp(client: Client): Promise<void> {
    const max = this.options.catchUpMax;
    const entries: Partial<Record<FeedStreamKey, RawEntry[]>> = {};
    const ends = { ...client.cursor.ids };
    const read = await Promise.all(
      FEED_STREAM_KEYS.map((k) => this.redis.after(k, client.cursor.ids[k], max + 1)),
    );
    let tooFar = false;
    FEED_STREAM_KEYS.forEach((k, i) => {
      const got = read[i];
      if (got.length > max) tooFar = true;
      entries[k] = got;
      if (got.length) ends[k] = got[got.length - 1][0];
    });
    if (tooFar) {
      // Further behind than a page can replay: start over from a snapshot, and say so.
      const now = await this.cursor();
      client.cursor = now;
      this.send(client, 'reset', { reason: `more than ${max} entries were missed on a stream` }, now);
      return;
    }
    const hbs = await this.redis.heartbeatsSince(client.cursor.hb + 1, 100_000);
    const tick: Tick = {
      entries,
      ends,
      heartbeats: await this.withDepths(hbs),
      hbEnd: hbs.length ? Math.max(client.cursor.hb, ...hbs.map(([, ms]) => ms)) : client.cursor.hb,
      registered: await this.registered(entries.ce ?? []),
      holders: await this.holders(entries.ci ?? []),
    };
    this.deliver(client, tick);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.poll(), ms);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    try {
      if (!this.position) {
        const [ids, now] = await Promise.all([this.redis.tails(), this.redis.time()]);
        this.position = { ids, hb: now - 1 };
        for (const w of this.readyWaiters.splice(0)) w();
      } else if (this.clients.size) {
        const tick = await this.read(this.position);
        this.position = { ids: tick.ends, hb: tick.hbEnd };
        for (const c of this.clients) {
          if (c.queue) c.queue.push(tick);
          else this.deliver(c, tick);
        }
      } else {
        // Nobody listens: keep the position at the tails without reading the entries.
        const ids = await this.redis.tails();
        this.position = { ids, hb: Math.max(this.position.hb, (await this.redis.time()) - 1) };
      }
      if (this.failing) this.logger.info('console live feed: Redis answers again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.logger.warn({ err }, 'console live feed: reading Redis failed; retrying');
      this.failing = true;
    }
    this.schedule(this.failing ? Math.max(1000, this.options.pollMs) : this.options.pollMs);
  }

  private async read(from: FeedCursor): Promise<Tick> {
    const n = this.options.readCount;
    const [read, hbs] = await Promise.all([
      Promise.all(FEED_STREAM_KEYS.map((k) => this.redis.after(k, from.ids[k], n))),
      this.redis.heartbeatsSince(from.hb + 1, 5000),
    ]);
    const entries: Partial<Record<FeedStreamKey, RawEntry[]>> = {};
    const ends = { ...from.ids };
    FEED_STREAM_KEYS.forEach((k, i) => {
      if (!read[i].length) return;
      entries[k] = read[i];
      ends[k] = read[i][read[i].length - 1][0];
    });
    return {
      entries,
      ends,
      heartbeats: await this.withDepths(hbs),
      hbEnd: hbs.length ? Math.max(from.hb, ...hbs.map(([, ms]) => ms)) : from.hb,
      registered: await this.registered(entries.ce ?? []),
      holders: await this.holders(entries.ci ?? []),
    };
  }

  private async holders(entries: RawEntry[]): Promise<Map<string, string>> {
    const resources = new Set<string>();
    for (const e of entries) {
      const item = feedItem('ci', e);
      if (item && typeof item.resource === 'string' && item.resource) resources.add(item.resource);
    }
    return this.redis.lockHolders([...resources]);
  }

  /** Adds each heartbeating session's inbox depth (drains write no event; a heartbeat follows them). */
  private async withDepths(hbs: [string, number][]): Promise<[string, number, number][]> {
    const depths = await this.redis.inboxDepths(hbs.map(([s]) => s));
    return hbs.map(([s, ms], i) => [s, ms, depths[i] ?? 0]);
  }

  private async registered(entries: RawEntry[]): Promise<Map<string, Record<string, unknown>>> {
    const ids = new Set<string>();
    for (const e of entries) {
      const item = feedItem('ce', e);
      if (item?.k === 'session.register' && typeof item.session === 'string') ids.add(item.session);
    }
    const out = new Map<string, Record<string, unknown>>();
    if (!ids.size) return out;
    const list = [...ids];
    const hashes = await this.redis.hashes(list.map((s) => this.redis.keyspace.coordKey(`session:${s}`)));
    hashes.forEach((h, i) => {
      const v = sessionView(h);
      if (v) out.set(list[i], v);
    });
    return out;
  }

  /** Sends the part of a tick this client has not seen, and advances its cursor past the tick. */
  private deliver(client: Client, tick: Tick): void {
    const items: FeedItem[] = [];
    for (const k of FEED_STREAM_KEYS) {
      const after = client.cursor.ids[k];
      for (const e of tick.entries[k] ?? []) {
        if (compareIds(e[0], after) <= 0) continue;
        const item = feedItem(k, e);
        if (!item) continue;
        if (item.k === 'op.failed' && typeof item.resource === 'string') {
          item.holder = tick.holders.get(item.resource) ?? null;
        }
        if (item.k === 'session.register' && typeof item.session === 'string') {
          const v = tick.registered.get(item.session);
          if (v) item.session_view = v;
        }
        items.push(item);
      }
      client.cursor.ids[k] = maxId(after, tick.ends[k]);
    }
    const hbs = tick.heartbeats.filter(([, ms]) => ms > client.cursor.hb);
    client.cursor.hb = Math.max(client.cursor.hb, tick.hbEnd);
    if (!items.length && !hbs.length) return;
    if (hbs.length) items.push({ s: 'ce', id: '', k: 'hb', ts: null, sessions: hbs });
    this.send(client, 'batch', items, client.cursor);
  }

  private send(client: Client, event: string, data: unknown, cursor: FeedCursor): void {
    const chunk = `id: ${formatCursor(cursor)}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    client.sink.write(chunk);
    if (client.sink.buffered > this.options.maxBufferedBytes) {
      // A client that cannot keep up is dropped; it reconnects with its Last-Event-ID and resumes.
      this.clients.delete(client);
      client.sink.close();
    }
  }
}
