import type Redis from 'ioredis';
import {
  CoordbusError,
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
}

type RawEntry = [id: string, fields: string[] | null];

/**
 * The coord events stream, read through a consumer group (the default source, `event-manager`).
 *
 * Each poll takes, in order: (1) this consumer's own pending entries — handed out before and not
 * committed, or left by this consumer's previous incarnation; (2) entries idle at other consumers
 * past `claimIdleMs` (XAUTOCLAIM: a dead replica's work); (3) new entries (XREADGROUP `>`, blocking
 * up to `blockMs`). Handed-out entries stay in the consumer's PEL until `commit()` XACKs them, so a
 * dropped poll, a crash or a failed handler loses nothing. Entries that fail to decode, or that
 * were delivered `maxDeliveries` times, are moved to the dead-letter stream and acked in one MULTI
 * (both keys share a hash tag), and the poll goes on.
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
  private readonly deadStream: string;
  private readonly maxBatch: number;
  private readonly blockMs: number;
  private readonly claimIdleMs: number;
  private readonly maxDeliveries: number;
  private readonly deadMaxLen: number;
  private readonly codec: EnvelopeCodec;
  /** Handed out and not yet committed: event key -> stream entry ids. */
  private readonly inFlight = new Map<string, string[]>();
  /** Our PEL may hold entries we did not hand out in this process (a previous incarnation's). */
  private ownPendingUnknown = true;
  private groupReady = false;
  private claimCursor = '0-0';
  private lastClaimAt = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: StreamSourceOptions) {
    this.redis = options.redis;
    this.stream = options.keyspace.coordEvents;
    this.deadStream = options.keyspace.deadLetter(this.stream);
    this.group = options.group ?? GROUPS.sentinel;
    this.consumer = options.consumer;
    if (!this.consumer) throw new RangeError('StreamSource needs a consumer name');
    this.name = options.name ?? 'event-manager';
    this.maxBatch = resolveMaxBatch(options.maxBatch);
    this.blockMs = options.blockMs ?? 1000;
    this.claimIdleMs = options.claimIdleMs ?? 30_000;
    this.maxDeliveries = options.maxDeliveries ?? 5;
    this.deadMaxLen = options.deadLetterMaxLen ?? 100_000;
    this.codec = options.codec ?? new EnvelopeCodec();
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
    if (ids.length) await this.redis.xack(this.stream, this.group, ...ids);
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
    await this.chain;
  }

  // ---- reading ----------------------------------------------------------------------------

  private async pollOnce(signal?: AbortSignal): Promise<CoordEvent[]> {
    throwIfAborted(signal);
    if (this.closed) return [];
    await this.ensureGroup();
    if (this.ownPendingUnknown || this.inFlight.size) {
      const own = await this.readOwnPending();
      if (own.length) return own;
    }
    if (Date.now() - this.lastClaimAt >= Math.min(this.claimIdleMs / 2, 5_000)) {
      const claimed = await this.reclaim();
      if (claimed.length) return claimed;
    }
    throwIfAborted(signal);
    const fresh = await this.withGroup(
      () =>
        this.redis.xreadgroup(
          'GROUP',
          this.group,
          this.consumer,
          'COUNT',
          this.maxBatch,
          'BLOCK',
          this.blockMs,
          'STREAMS',
          this.stream,
          '>',
        ) as Promise<[string, RawEntry[]][] | null>,
    );
    const entries = fresh?.[0]?.[1] ?? [];
    return this.accept(entries, new Map());
  }

  private async ensureGroup(): Promise<void> {
    if (this.groupReady) return;
    try {
      // From the start of the stream: events written before the first sentinel ran still count.
      await this.redis.xgroup('CREATE', this.stream, this.group, '0', 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
    this.groupReady = true;
  }

  /** Runs a group command, recreating the group once if it vanished (stream deleted, FLUSHALL). */
  private async withGroup<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!String((err as Error).message).includes('NOGROUP')) throw err;
      this.groupReady = false;
      await this.ensureGroup();
      return fn();
    }
  }

  private async readOwnPending(): Promise<CoordEvent[]> {
    const pending = (await this.withGroup(() =>
      this.redis.xpending(this.stream, this.group, '-', '+', this.maxBatch, this.consumer),
    )) as [string, string, number, number][];
    if (!pending.length) {
      this.ownPendingUnknown = false;
      this.inFlight.clear();
      return [];
    }
    const deliveries = new Map(pending.map(([id, , , count]) => [id, Number(count) + 1]));
    const res = (await this.redis.xreadgroup(
      'GROUP',
      this.group,
      this.consumer,
      'COUNT',
      this.maxBatch,
      'STREAMS',
      this.stream,
      '0',
    )) as [string, RawEntry[]][] | null;
    this.inFlight.clear();
    return this.accept(res?.[0]?.[1] ?? [], deliveries);
  }

  private async reclaim(): Promise<CoordEvent[]> {
    this.lastClaimAt = Date.now();
    const res = (await this.withGroup(() =>
      this.redis.xautoclaim(
        this.stream,
        this.group,
        this.consumer,
        this.claimIdleMs,
        this.claimCursor,
        'COUNT',
        this.maxBatch,
      ),
    )) as unknown as [string, RawEntry[], string[]?];
    this.claimCursor = res[0];
    const entries = res[1].filter((e) => e && e[1] !== null);
    if (res[2]?.length) await this.redis.xack(this.stream, this.group, ...res[2]);
    if (!entries.length) return [];
    const pending = (await this.redis.xpending(
      this.stream,
      this.group,
      entries[0][0],
      entries[entries.length - 1][0],
      entries.length,
      this.consumer,
    )) as [string, string, number, number][];
    const deliveries = new Map(pending.map(([id, , , count]) => [id, Number(count)]));
    return this.accept(entries, deliveries);
  }

  /** Decodes entries; dead-letters the undecodable and the over-delivered; records what it hands out. */
  private async accept(entries: RawEntry[], deliveries: Map<string, number>): Promise<CoordEvent[]> {
    const out: CoordEvent[] = [];
    const deleted: string[] = [];
    for (const [id, fields] of entries) {
      if (fields === null) {
        deleted.push(id); // trimmed away while pending: nothing left to handle
        continue;
      }
      const count = deliveries.get(id) ?? 1;
      if (count > this.maxDeliveries) {
        await this.deadLetter(
          id,
          fields,
          ErrorCode.Internal,
          `not committed after ${count - 1} deliveries`,
          count,
        );
        continue;
      }
      let event: CoordEvent;
      try {
        event = this.codec.decode(Schemas.coordEvent, fields);
      } catch (err) {
        const e = toCoordbusError(err);
        await this.deadLetter(id, fields, e.code, e.message, count);
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
    if (deleted.length) await this.redis.xack(this.stream, this.group, ...deleted);
    return out;
  }

  private async deadLetter(
    id: string,
    fields: string[],
    code: ErrorCode,
    reason: string,
    count: number,
  ): Promise<void> {
    const entry: DeadLetterEntry = {
      fields: fieldsToRecord(fields),
      source_stream: this.stream,
      entry_id: id,
      reason,
      error_code: code,
      delivery_count: count,
      group: this.group,
      consumer: this.consumer,
      ts: new Date().toISOString(),
    };
    let encoded: string[];
    try {
      encoded = this.codec.encode(Schemas.deadLetter, entry);
    } catch (err) {
      // Too large even for a dead letter: keep the reason and the id, drop the body.
      entry.fields = { truncated: 'true' };
      entry.reason = `${reason} (original fields dropped: ${(err as CoordbusError).message})`;
      encoded = this.codec.encode(Schemas.deadLetter, entry);
    }
    const res = await this.redis
      .multi()
      .xadd(this.deadStream, 'MAXLEN', '~', this.deadMaxLen, '*', ...encoded)
      .xack(this.stream, this.group, id)
      .exec();
    const failed = res?.find(([err]) => err);
    if (!res || failed) throw failed?.[0] ?? new Error('dead-letter transaction aborted');
    this.options.onDeadLetter?.(entry);
  }
}
