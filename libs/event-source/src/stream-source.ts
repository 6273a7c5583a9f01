import type Redis from 'ioredis';
import {
  CoordEvent,
  DeadLetterEntry,
  EnvelopeCodec,
  ErrorCode,
  fieldsToRecord,
  GROUPS,
  Keyspace,
  Schemas,
  toCoordbusError,
} from '@coordbus/envelope';
import { ConsumerGroup, IdleConsumerSweeper, RawEntry, StreamMetrics } from '@coordbus/redis-streams';
import { eventKey, resolveMaxBatch, SentinelEventSource, SourceOptions, throwIfAborted } from './source';

export interface StreamSourceOptions extends SourceOptions {
  /** A connection this source owns for blocking reads (do not share it: XREADGROUP BLOCK holds it). */
  redis: Redis;
  keyspace: Keyspace;
  /** This replica's consumer name; keep it stable across restarts to resume its own pending entries first. */
  consumer: string;
  /** Consumer group (default `sentinel`). */
  group?: string;
  /** Source name (default `event-manager`, seed 002's `SENTINEL_SOURCE` value). */
  name?: string;
  /** How long one poll blocks waiting for new entries (default 1000 ms). */
  blockMs?: number;
  /** Entries pending this long at another consumer are reclaimed with XAUTOCLAIM (default 30 s). */
  claimIdleMs?: number;
  /** An entry delivered this many times without a commit goes to the dead-letter stream (default 5). */
  maxDeliveries?: number;
  /** Approximate cap of the dead-letter stream (default 100 000). */
  deadLetterMaxLen?: number;
  codec?: EnvelopeCodec;
  /** Called after an entry was dead-lettered (for logs and metrics). */
  onDeadLetter?: (entry: DeadLetterEntry) => void;
  /**
   * Other consumers of the group idle this long (ms) with nothing pending are removed, about once
   * a minute (`STREAM_CONSUMER_IDLE_REMOVE`, as the transport does); 0 or unset never removes any.
   */
  consumerIdleRemoveMs?: number;
  /** Time between idle-consumer passes (ms). Default 60000. */
  consumerSweepIntervalMs?: number;
  /** Counts the group's consumers and removals (`coordbus_stream_consumers*`). */
  metrics?: StreamMetrics;
  /** After idle consumers were removed (for the log). */
  onConsumersRemoved?: (names: string[]) => void;
}

/**
 * The coord events stream, read through a consumer group (the default source, `event-manager`).
 *
 * Each poll takes, in order: (1) this consumer's own pending entries — handed out before and not
 * committed, or left by this consumer's previous incarnation; (2) entries idle at other consumers
 * past `claimIdleMs` (XAUTOCLAIM: a dead replica's work); (3) new entries (XREADGROUP `>`, blocking
 * up to `blockMs`). Handed-out entries stay in the consumer's PEL until `commit()` XACKs them, so a
 * dropped poll, a crash or a failed handler loses nothing. Entries that fail to decode, or that
 * were delivered `maxDeliveries` times, are moved to the dead-letter stream and acked in one MULTI
 * (both keys share a hash tag), and the poll goes on. Every group command goes through the
 * transport's {@link ConsumerGroup}, so the sentinel and the services create groups, recover from
 * NOGROUP, reclaim and dead-letter the same way and write the same dead-letter shape.
 *
 * Events keep the `source` their producer stamped (`coord`, `sentinel`, `fs-poll` via the bridge):
 * that, not this source's `name`, is the dedup key's first half.
 */
export class StreamSource implements SentinelEventSource {
  readonly name: string;
  readonly stream: string;
  readonly group: string;
  readonly consumer: string;
  private readonly redis: Redis;
  private readonly cg: ConsumerGroup;
  private readonly sweeper: IdleConsumerSweeper;
  private readonly maxBatch: number;
  private readonly blockMs: number;
  private readonly claimIdleMs: number;
  private readonly maxDeliveries: number;
  private readonly codec: EnvelopeCodec;
  /** Handed out and not yet committed: event key -> stream entry ids. */
  private readonly inFlight = new Map<string, string[]>();
  /** Handed out, failed for a dependency outage: returned by the next poll as they are (no re-read, no count). */
  private kept: CoordEvent[] = [];
  /** Our PEL may hold entries we did not hand out in this process (a previous incarnation's). */
  private ownPendingUnknown = true;
  private claimCursor = '0-0';
  private lastClaimAt = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: StreamSourceOptions) {
    this.redis = options.redis;
    this.stream = options.keyspace.coordEvents;
    this.group = options.group ?? GROUPS.sentinel;
    this.consumer = options.consumer;
    if (!this.consumer) throw new RangeError('StreamSource needs a consumer name');
    this.name = options.name ?? 'event-manager';
    this.maxBatch = resolveMaxBatch(options.maxBatch);
    this.blockMs = options.blockMs ?? 1000;
    this.claimIdleMs = options.claimIdleMs ?? 30_000;
    this.maxDeliveries = options.maxDeliveries ?? 5;
    this.codec = options.codec ?? new EnvelopeCodec();
    this.cg = new ConsumerGroup({
      redis: this.redis,
      stream: this.stream,
      group: this.group,
      consumer: this.consumer,
      deadLetterMaxLen: options.deadLetterMaxLen ?? 100_000,
      codec: this.codec,
      onDeadLetter: (entry) => options.onDeadLetter?.(entry),
    });
    this.sweeper = new IdleConsumerSweeper(() => [this.cg], {
      idleMs: options.consumerIdleRemoveMs ?? 0,
      intervalMs: options.consumerSweepIntervalMs,
      metrics: options.metrics,
      onRemoved: (_group, names) => options.onConsumersRemoved?.(names),
    });
  }

  /** One poll at a time: a blocking read owns the connection, and overlapping reads would race the PEL. */
  poll(signal?: AbortSignal): Promise<CoordEvent[]> {
    const run = this.chain.then(
      () => this.pollOnce(signal),
      () => this.pollOnce(signal),
    );
    this.chain = run.catch(() => undefined);
    return run;
  }

  async commit(events: readonly CoordEvent[]): Promise<void> {
    const ids: string[] = [];
    for (const e of events) {
      const key = eventKey(e);
      const found = this.inFlight.get(key);
      if (!found) continue;
      ids.push(...found);
      this.inFlight.delete(key);
    }
    await this.cg.ack(ids);
  }

  /**
   * Keeps `events` for the next poll without a delivery: their entries stay pending here, with
   * their idle time reset (XCLAIM JUSTID, which counts nothing) so no replica reclaims them
   * meanwhile. An entry another replica took anyway is dropped (it is that replica's now).
   */
  async retryLater(events: readonly CoordEvent[]): Promise<void> {
    const ids = events.flatMap((e) => this.inFlight.get(eventKey(e)) ?? []);
    const still = new Set(await this.cg.touch(ids));
    for (const e of events) {
      const key = eventKey(e);
      const mine = this.inFlight.get(key)?.filter((id) => still.has(id)) ?? [];
      if (!mine.length) {
        this.inFlight.delete(key);
        continue;
      }
      this.inFlight.set(key, mine);
      if (!this.kept.some((k) => eventKey(k) === key)) this.kept.push(e);
    }
  }

  /** Entries in the stream not yet delivered to the group (XINFO GROUPS `lag`), or null if Redis cannot tell. */
  async backlog(): Promise<number | null> {
    const groups = (await this.redis.xinfo('GROUPS', this.stream)) as unknown[][];
    for (const g of groups) {
      const info = fieldsToRecord(g.map(String));
      if (info.name === this.group) {
        const lag = Number(info.lag);
        return info.lag === undefined || Number.isNaN(lag) ? null : lag;
      }
    }
    return null;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.sweeper.stop();
    await this.chain;
  }

  // ---- reading ----------------------------------------------------------------------------

  private async pollOnce(signal?: AbortSignal): Promise<CoordEvent[]> {
    throwIfAborted(signal);
    if (this.closed) return [];
    // From the start of the stream: events written before the first sentinel ran still count.
    if (!this.cg.ready) await this.cg.ensure();
    this.sweeper.start();
    if (this.kept.length) {
      const again = this.kept.filter((e) => this.inFlight.has(eventKey(e)));
      this.kept = [];
      if (again.length) return again;
    }
    if (this.ownPendingUnknown || this.inFlight.size) {
      const own = await this.readOwnPending();
      if (own.length) return own;
    }
    if (Date.now() - this.lastClaimAt >= Math.min(this.claimIdleMs / 2, 5_000)) {
      const claimed = await this.reclaim();
      if (claimed.length) return claimed;
    }
    throwIfAborted(signal);
    const fresh = await this.cg.withGroup(() => this.cg.read(this.redis, this.maxBatch, '>', this.blockMs));
    return this.accept(fresh, new Map());
  }

  private async readOwnPending(): Promise<CoordEvent[]> {
    const pending = await this.cg.withGroup(() => this.cg.ownPending(this.maxBatch));
    if (!pending.length) {
      this.ownPendingUnknown = false;
      this.inFlight.clear();
      return [];
    }
    // Reading them again is one more delivery.
    const deliveries = new Map(pending.map(([id, count]) => [id, count + 1]));
    const entries = await this.cg.read(this.redis, this.maxBatch, '0');
    this.inFlight.clear();
    return this.accept(entries, deliveries);
  }

  private async reclaim(): Promise<CoordEvent[]> {
    this.lastClaimAt = Date.now();
    const res = await this.cg.withGroup(() =>
      this.cg.claimStale(this.claimIdleMs, this.claimCursor, this.maxBatch),
    );
    this.claimCursor = res.cursor;
    const entries = res.entries.filter((e) => e.fields !== null);
    await this.cg.ack(res.deleted);
    if (!entries.length) return [];
    const deliveries = await this.cg.pendingCounts(entries.map((e) => e.id));
    return this.accept(entries, deliveries);
  }

  /** Decodes entries; dead-letters the undecodable and the over-delivered; records what it hands out. */
  private async accept(entries: RawEntry[], deliveries: Map<string, number>): Promise<CoordEvent[]> {
    const out: CoordEvent[] = [];
    const deleted: string[] = [];
    for (const { id, fields } of entries) {
      if (fields === null) {
        deleted.push(id); // trimmed away while pending: nothing left to handle
        continue;
      }
      const count = deliveries.get(id) ?? 1;
      if (count > this.maxDeliveries) {
        await this.cg.deadLetter(
          { id, fields, deliveryCount: count },
          `not committed after ${count - 1} deliveries`,
          ErrorCode.Internal,
        );
        continue;
      }
      let event: CoordEvent;
      try {
        event = this.codec.decode(Schemas.coordEvent, fields);
      } catch (err) {
        const e = toCoordbusError(err);
        await this.cg.deadLetter({ id, fields, deliveryCount: count }, e.message, e.code);
        continue;
      }
      const key = eventKey(event);
      const ids = this.inFlight.get(key);
      if (ids) ids.push(id);
      else {
        this.inFlight.set(key, [id]);
        out.push(event);
      }
    }
    await this.cg.ack(deleted);
    return out;
  }
}
