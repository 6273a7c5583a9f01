import {
  DEAD_LETTER_SUFFIX,
  DeadLetterEntry,
  EnvelopeCodec,
  ErrorCode,
  fieldsToRecord,
  Schema,
  Schemas,
  TooLargeError,
} from '@coordbus/envelope';
import { bindCommand } from '@coordbus/lua';
import type Redis from 'ioredis';
import { COMMANDS } from './commands';

/** One stream entry as read: `fields` is null when the entry was deleted while pending. */
export interface RawEntry {
  id: string;
  fields: string[] | null;
  deliveryCount: number;
}

type ReadReply = Array<[string, Array<[string, string[] | null]>]> | null;

export interface ConsumerGroupOptions {
  /** The connection for every non-blocking command (acks, claims, dead letters). */
  redis: Redis;
  stream: string;
  group: string;
  consumer: string;
  /** Approximate MAXLEN of the `:dead` stream. */
  deadLetterMaxLen: number;
  codec: EnvelopeCodec;
  /** Called after an entry was dead-lettered (or, for a `:dead` stream, dropped from the group). */
  onDeadLetter?: (entry: DeadLetterEntry, written: boolean) => void;
}

const NOGROUP = /NOGROUP/;

/** One consumer of a group, from XINFO CONSUMERS. */
export interface ConsumerInfo {
  name: string;
  pending: number;
  /** ms since its last read or claim attempt. */
  idleMs: number;
  /** Redis 7.2+: ms since its last successful read or claim (null before 7.2, or when it never had one). */
  inactiveMs: number | null;
}

/** What one pass of {@link ConsumerGroup.removeIdleConsumers} did. */
export interface IdleConsumerSweep {
  removed: string[];
  /** Consumers left in the group after the pass. */
  consumers: number;
}

/** Whether `err` is Redis saying the consumer group (or its stream) is gone. */
export function isNoGroup(err: unknown): boolean {
  return NOGROUP.test(String((err as Error)?.message));
}

/**
 * The one dead-letter shape: a `DeadLetterEntry` encoded as `type dead-letter v 1 data <json>`.
 * An original too large to copy is replaced by a note of its size, so the dead letter itself
 * always fits (the reason and the entry id are what an operator needs first).
 */
export function encodeDeadLetter(codec: EnvelopeCodec, entry: DeadLetterEntry): string[] {
  const schema = Schemas.deadLetter as Schema<DeadLetterEntry>;
  try {
    return codec.encode(schema, entry, { validate: false });
  } catch (err) {
    if (!(err instanceof TooLargeError)) throw err;
    entry.fields = { truncated: `original entry of ${err.size} bytes was too large to copy` };
    return codec.encode(schema, entry, { validate: false });
  }
}

/**
 * One consumer of one Redis Streams consumer group: every group command coordbus sends, in one
 * place, for both the transport's loops (server.ts) and the sentinel's `StreamSource`.
 *
 * - The group is created at id `0` with MKSTREAM, so entries written before it existed count.
 * - A command that finds the group gone (NOGROUP: stream deleted, FLUSHALL) recreates it once.
 * - Own pending entries are read with XREADGROUP from an id (`0` onwards), stale ones taken from
 *   other consumers with XAUTOCLAIM, failed ones re-taken with XCLAIM.
 * - An entry is dead-lettered by XADD to `<stream>:dead` and XACK in one MULTI (both keys share
 *   the stream's hash tag). An entry of a `:dead` stream is never dead-lettered again (no
 *   `:dead:dead`): it stays in its stream for operators and is only acked.
 */
export class ConsumerGroup {
  readonly stream: string;
  readonly group: string;
  readonly consumer: string;
  readonly deadStream: string | null;
  private created = false;
  private removeIdle?: ReturnType<typeof bindCommand<string>>;

  constructor(private readonly options: ConsumerGroupOptions) {
    this.stream = options.stream;
    this.group = options.group;
    this.consumer = options.consumer;
    this.deadStream = options.stream.endsWith(DEAD_LETTER_SUFFIX)
      ? null
      : `${options.stream}${DEAD_LETTER_SUFFIX}`;
  }

  private get redis(): Redis {
    return this.options.redis;
  }

  /** XGROUP CREATE at `0` with MKSTREAM; an existing group is fine. Resolves true when it created the group. */
  async ensure(): Promise<boolean> {
    try {
      await this.redis.xgroup('CREATE', this.stream, this.group, '0', 'MKSTREAM');
      this.created = true;
      return true;
    } catch (err) {
      if (!String((err as Error)?.message).startsWith('BUSYGROUP')) throw err;
      this.created = true;
      return false;
    }
  }

  /** Runs a group command, recreating the group once if it vanished. */
  async withGroup<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!isNoGroup(err)) throw err;
      this.created = false;
      await this.ensure();
      return fn();
    }
  }

  /** Whether {@link ensure} has succeeded since the last NOGROUP. */
  get ready(): boolean {
    return this.created;
  }

  /**
   * XREADGROUP on `conn` (a blocking read needs a connection of its own): `>` for new entries,
   * an id for this consumer's own pending ones after it. Delivery counts are not in the reply:
   * new entries are on their first delivery; use {@link pendingCounts} for pending ones.
   */
  async read(conn: Redis, count: number, from: string, blockMs?: number): Promise<RawEntry[]> {
    const args: Array<string | number> = ['GROUP', this.group, this.consumer, 'COUNT', count];
    if (blockMs !== undefined) args.push('BLOCK', blockMs);
    args.push('STREAMS', this.stream, from);
    const reply = (await (
      conn as unknown as { xreadgroup(...a: Array<string | number>): Promise<unknown> }
    ).xreadgroup(...args)) as ReadReply;
    if (!reply) return [];
    const out: RawEntry[] = [];
    for (const [, items] of reply) {
      for (const [id, fields] of items) out.push({ id, fields, deliveryCount: 1 });
    }
    return out;
  }

  /** Delivery counts of this consumer's pending `ids` (XPENDING over their range, at most `limit` rows). */
  async pendingCounts(ids: string[], limit = ids.length): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    if (!ids.length) return counts;
    const sorted = [...ids].sort(compareIds);
    const rows = (await this.redis.xpending(
      this.stream,
      this.group,
      sorted[0],
      sorted[sorted.length - 1],
      Math.max(limit, ids.length),
      this.consumer,
    )) as Array<[string, string, number, number]>;
    for (const [id, , , n] of rows) counts.set(id, Number(n));
    return counts;
  }

  /** This consumer's first `count` pending entries: `[id, delivery count]`. */
  async ownPending(count: number): Promise<Array<[string, number]>> {
    const rows = (await this.redis.xpending(
      this.stream,
      this.group,
      '-',
      '+',
      count,
      this.consumer,
    )) as Array<[string, string, number, number]>;
    return rows.map(([id, , , n]) => [id, Number(n)]);
  }

  /**
   * XAUTOCLAIM: entries idle past `minIdleMs` at any consumer become this consumer's (their
   * delivery count goes up by one). Entries deleted while pending are already gone from the PEL
   * and come back in `deleted`.
   */
  async claimStale(
    minIdleMs: number,
    cursor: string,
    count: number,
  ): Promise<{ cursor: string; entries: RawEntry[]; deleted: string[] }> {
    const [next, items, deleted] = (await this.redis.xautoclaim(
      this.stream,
      this.group,
      this.consumer,
      minIdleMs,
      cursor,
      'COUNT',
      count,
    )) as [string, Array<[string, string[] | null] | null>, string[]?];
    const entries = items
      .filter((i): i is [string, string[] | null] => Array.isArray(i))
      .map(([id, fields]) => ({ id, fields, deliveryCount: 1 }));
    return { cursor: next, entries, deleted: deleted ?? [] };
  }

  /** XCLAIM `ids` to this consumer (a redelivery: Redis counts it). Ids not returned are no longer pending. */
  async claim(ids: string[], minIdleMs: number): Promise<RawEntry[]> {
    const items = (await this.redis.xclaim(
      this.stream,
      this.group,
      this.consumer,
      minIdleMs,
      ...ids,
    )) as Array<[string, string[] | null]>;
    return items.filter((i) => Array.isArray(i)).map(([id, fields]) => ({ id, fields, deliveryCount: 1 }));
  }

  /**
   * XCLAIM ... JUSTID to this consumer: resets the entries' idle time WITHOUT counting a delivery,
   * so an entry kept while a dependency is down is neither reclaimed by another replica nor
   * charged a delivery. Returns the ids still pending here.
   */
  async touch(ids: string[]): Promise<string[]> {
    if (!ids.length) return [];
    return (await this.redis.xclaim(this.stream, this.group, this.consumer, 0, ...ids, 'JUSTID')) as string[];
  }

  async ack(ids: string[]): Promise<void> {
    if (ids.length) await this.redis.xack(this.stream, this.group, ...ids);
  }

  /** The group's consumers (XINFO CONSUMERS); empty when the group or stream is gone. */
  async consumers(): Promise<ConsumerInfo[]> {
    let rows: unknown[][];
    try {
      rows = (await this.redis.xinfo('CONSUMERS', this.stream, this.group)) as unknown[][];
    } catch (err) {
      if (isNoGroup(err) || /no such key/i.test(String((err as Error)?.message))) return [];
      throw err;
    }
    return rows.map((raw) => {
      const c = fieldsToRecord(raw.map(String));
      const inactive = c.inactive === undefined ? NaN : Number(c.inactive);
      return {
        name: c.name,
        pending: Number(c.pending),
        idleMs: Number(c.idle),
        inactiveMs: Number.isFinite(inactive) && inactive >= 0 ? inactive : null,
      };
    });
  }

  /**
   * Removes the consumers a gone replica left behind: those owning no pending entry and idle
   * (and inactive, on Redis 7.2+) for at least `idleMs`; never this one. Each removal re-checks
   * in one script (removeIdleConsumer-1.lua), so a consumer handed entries meanwhile is kept.
   * At most `limit` removals per pass, so one pass stays bounded however many were left.
   */
  async removeIdleConsumers(idleMs: number, limit = 100): Promise<IdleConsumerSweep> {
    if (!(idleMs > 0)) throw new RangeError(`idleMs must be > 0 (got ${idleMs})`);
    const all = await this.consumers();
    const candidates = all
      .filter(
        (c) =>
          c.name !== this.consumer &&
          c.pending === 0 &&
          c.idleMs >= idleMs &&
          (c.inactiveMs === null || c.inactiveMs >= idleMs),
      )
      .slice(0, limit);
    const removed: string[] = [];
    if (candidates.length) {
      this.removeIdle ??= bindCommand<string>(this.redis, COMMANDS.removeIdleConsumer);
      for (const c of candidates) {
        const r = await this.removeIdle([this.stream], [this.group, c.name, idleMs, this.consumer]);
        if (r === 'removed') removed.push(c.name);
      }
    }
    return { removed, consumers: all.length - removed.length };
  }

  /**
   * Moves the entry to the dead-letter stream with its reason, atomically with its ack. For an
   * entry of a `:dead` stream it only acks (the entry stays where it is) and resolves false.
   */
  async deadLetter(entry: RawEntry, reason: string, code: ErrorCode): Promise<DeadLetterEntry> {
    const dead: DeadLetterEntry = Object.assign(new DeadLetterEntry(), {
      fields: entry.fields ? fieldsToRecord(entry.fields) : {},
      source_stream: this.stream,
      entry_id: entry.id,
      reason: reason || 'unknown',
      error_code: code,
      delivery_count: entry.deliveryCount,
      group: this.group,
      consumer: this.consumer,
      ts: new Date().toISOString(),
    });
    if (this.deadStream === null) {
      await this.ack([entry.id]);
      this.options.onDeadLetter?.(dead, false);
      return dead;
    }
    const fields = encodeDeadLetter(this.options.codec, dead);
    const results = await this.redis
      .multi()
      .xadd(this.deadStream, 'MAXLEN', '~', this.options.deadLetterMaxLen, '*', ...fields)
      .xack(this.stream, this.group, entry.id)
      .exec();
    if (!results) throw new Error('dead-letter transaction was aborted');
    for (const [err] of results) if (err) throw err;
    this.options.onDeadLetter?.(dead, true);
    return dead;
  }
}

/** Orders stream ids `<ms>-<seq>` numerically. */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-');
  const [bm, bs] = b.split('-');
  if (am.length !== bm.length) return am.length - bm.length;
  if (am !== bm) return am < bm ? -1 : 1;
  const d = BigInt(as ?? 0) - BigInt(bs ?? 0);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}
