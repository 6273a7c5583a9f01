import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import type { Keyspace } from '@coordbus/envelope';
import { KEYSPACE, REDIS } from '@coordbus/runtime';
import { FEED_STREAM_KEYS, FeedStreamKey } from './feed-cursor';
import type { RawEntry } from './console-views';

function toRecord(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]] = flat[i + 1];
  return out;
}

/** The counters of one stream: entries ever added, and per group entries read and pending. */
export interface GroupCounters {
  /** XINFO STREAM entries-added; null when the stream does not exist. */
  added: number | null;
  /** By group name: XINFO GROUPS entries-read (null when Redis cannot tell) and pending. */
  groups: Map<string, { read: number | null; pending: number }>;
}

/**
 * Every Redis read and write of the console, as small methods (one command or one pipeline each),
 * so the services above hold the logic and tests can override a method to inject a fault.
 * Keys come from the Keyspace only.
 */
@Injectable()
export class ConsoleRedis {
  readonly streams: Record<FeedStreamKey, string>;

  constructor(
    @Inject(REDIS) readonly redis: Redis,
    @Inject(KEYSPACE) readonly keyspace: Keyspace,
  ) {
    const k = keyspace;
    this.streams = {
      ce: k.coordEvents,
      ci: k.coordIngest,
      je: k.jobEvents,
      te: k.telemetryEvents,
      ac: k.activityStream,
      au: k.auditStream,
      dci: k.deadLetter(k.coordIngest),
      dce: k.deadLetter(k.coordEvents),
      dso: k.deadLetter(k.sentinelObservations),
      dte: k.deadLetter(k.telemetryEvents),
      dje: k.deadLetter(k.jobEvents),
    };
  }

  get sessionsKey(): string {
    return this.keyspace.coordKey('sessions');
  }

  /** The last entry id of each feed stream (`0-0` for a stream that does not exist yet). */
  async tails(): Promise<Record<FeedStreamKey, string>> {
    const ids = await Promise.all(
      FEED_STREAM_KEYS.map(async (k) => {
        const last = (await this.redis.xrevrange(this.streams[k], '+', '-', 'COUNT', 1)) as RawEntry[];
        return last[0]?.[0] ?? '0-0';
      }),
    );
    return Object.fromEntries(FEED_STREAM_KEYS.map((k, i) => [k, ids[i]])) as Record<FeedStreamKey, string>;
  }

  /** Entries strictly after `afterId`, oldest first, at most `count` (one non-blocking XREAD). */
  async after(key: FeedStreamKey, afterId: string, count: number): Promise<RawEntry[]> {
    return this.afterIn(this.streams[key], afterId, count);
  }

  async afterIn(stream: string, afterId: string, count: number): Promise<RawEntry[]> {
    const res = (await this.redis.xread('COUNT', count, 'STREAMS', stream, afterId)) as
      [string, RawEntry[]][] | null;
    return res?.[0]?.[1] ?? [];
  }

  /** Newest first, at most `count`. */
  async latest(stream: string, count: number, before = '+'): Promise<RawEntry[]> {
    return (await this.redis.xrevrange(stream, before, '-', 'COUNT', count)) as RawEntry[];
  }

  /** Sessions that heartbeated at or after `sinceMs` (zset score), at most `limit`, oldest first. */
  async heartbeatsSince(sinceMs: number, limit: number): Promise<[string, number][]> {
    const flat = await this.redis.zrangebyscore(
      this.sessionsKey,
      sinceMs,
      '+inf',
      'WITHSCORES',
      'LIMIT',
      0,
      limit,
    );
    const out: [string, number][] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i], Number(flat[i + 1])]);
    return out;
  }

  /** Inbox depth of each session (one pipeline). */
  async inboxDepths(sessions: string[]): Promise<number[]> {
    if (!sessions.length) return [];
    const pipe = this.redis.pipeline();
    for (const s of sessions) pipe.llen(this.keyspace.coordKey(`inbox:${s}`));
    const res = (await pipe.exec()) ?? [];
    return res.map(([err, n]) => (err ? 0 : Number(n)));
  }

  /** Hashes by key (one pipeline); an absent key gives {}. */
  async hashes(keys: string[]): Promise<Record<string, string>[]> {
    if (!keys.length) return [];
    const out: Record<string, string>[] = [];
    for (let i = 0; i < keys.length; i += 500) {
      const pipe = this.redis.pipeline();
      for (const k of keys.slice(i, i + 500)) pipe.hgetall(k);
      const res = (await pipe.exec()) ?? [];
      for (const [err, h] of res) {
        if (err) throw err;
        out.push((h as Record<string, string>) ?? {});
      }
    }
    return out;
  }

  /** The owner of each resource's lock, for the resources that are held (one pipeline). */
  async lockHolders(resources: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (!resources.length) return out;
    const pipe = this.redis.pipeline();
    for (const r of resources) pipe.hget(this.keyspace.coordKey(`lock:${r}`), 'owner_session_id');
    const res = (await pipe.exec()) ?? [];
    res.forEach(([err, owner], i) => {
      if (!err && typeof owner === 'string' && owner) out.set(resources[i], owner);
    });
    return out;
  }

  /** Members of a zset, newest score first, at most `limit`. */
  async newestMembers(key: string, limit: number): Promise<string[]> {
    return this.redis.zrevrange(key, 0, limit - 1);
  }

  async zcard(key: string): Promise<number> {
    return this.redis.zcard(key);
  }

  /** The latest activity entry of each session (`activity:{activity}:last`), parsed. */
  async lastActivity(sessions: string[]): Promise<(Record<string, unknown> | null)[]> {
    if (!sessions.length) return [];
    const values = await this.redis.hmget(this.keyspace.activityLast, ...sessions);
    return values.map((v) => {
      if (!v) return null;
      try {
        return JSON.parse(v) as Record<string, unknown>;
      } catch {
        return null;
      }
    });
  }

  /** XINFO STREAM / GROUPS / CONSUMERS of one stream; null when the stream does not exist. */
  async streamInfo(stream: string): Promise<{
    stream: Record<string, unknown>;
    groups: {
      group: Record<string, unknown>;
      consumers: Record<string, unknown>[];
      oldestPendingId: string | null;
    }[];
  } | null> {
    let raw: unknown[];
    try {
      raw = (await this.redis.call('XINFO', 'STREAM', stream)) as unknown[];
    } catch (err) {
      if (/no such key/i.test((err as Error).message)) return null;
      throw err;
    }
    const info = toRecord(raw as string[]) as unknown as Record<string, unknown>;
    const groupsRaw = (await this.redis.call('XINFO', 'GROUPS', stream)) as unknown[][];
    const groups = await Promise.all(
      groupsRaw.map(async (g) => {
        const group = toRecord(g as string[]) as unknown as Record<string, unknown>;
        const name = String(group.name);
        const [consumersRaw, pending] = await Promise.all([
          this.redis.call('XINFO', 'CONSUMERS', stream, name) as Promise<unknown[][]>,
          this.redis.call('XPENDING', stream, name) as Promise<unknown[]>,
        ]);
        return {
          group,
          consumers: consumersRaw.map((c) => toRecord(c as string[]) as unknown as Record<string, unknown>),
          oldestPendingId: (pending?.[1] as string | null) ?? null,
        };
      }),
    );
    return { stream: info, groups };
  }

  /** GroupCounters of each stream, in one pipeline (two commands per stream). */
  async groupCounters(streams: string[]): Promise<GroupCounters[]> {
    const pipe = this.redis.pipeline();
    for (const s of streams) {
      pipe.call('XINFO', 'STREAM', s);
      pipe.call('XINFO', 'GROUPS', s);
    }
    const res = (await pipe.exec()) ?? [];
    const num = (v: unknown) => (v === null || v === undefined || v === '' ? null : Number(v));
    return streams.map((_, i) => {
      const [infoErr, info] = res[2 * i] ?? [];
      const [groupsErr, groups] = res[2 * i + 1] ?? [];
      // A stream that does not exist yet answers "no such key": no counters, not an error.
      if (infoErr || groupsErr) {
        const err = (infoErr ?? groupsErr) as Error;
        if (/no such key/i.test(err.message)) return { added: null, groups: new Map() };
        throw err;
      }
      const stream = toRecord(info as string[]);
      const added = num(stream['entries-added']);
      return {
        added,
        groups: new Map(
          (groups as string[][]).map((g) => {
            const r = toRecord(g) as Record<string, unknown>;
            // A group created at 0 reports entries-read as nil until it reads; lag says it then.
            const lag = num(r.lag);
            const read = num(r['entries-read']) ?? (added !== null && lag !== null ? added - lag : null);
            return [String(r.name), { read, pending: Number(r.pending ?? 0) }];
          }),
        ),
      };
    });
  }

  async xlen(stream: string): Promise<number> {
    return this.redis.xlen(stream);
  }

  /** Appends an entry (capped); resolves to its id. */
  async append(stream: string, maxLen: number, fields: string[]): Promise<string> {
    return (await this.redis.xadd(stream, 'MAXLEN', '~', maxLen, '*', ...fields)) as string;
  }

  async time(): Promise<number> {
    const [s, us] = await this.redis.time();
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  }
}
