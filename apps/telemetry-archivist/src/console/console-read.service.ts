import { Inject, Injectable } from '@nestjs/common';
import { CoordStore } from '@coordbus/coord';
import { decodeMeta, jobIdentity, JobMeta, jobOutcome } from '@coordbus/jobs';
import { ArchiveQueryService } from '../query/archive-query.service';
import { ARCHIVIST_CONFIG } from '../tokens';
import type { ArchivistConfig } from '../config';
import { ConsoleRedis } from './console-redis';
import {
  FeedItem,
  RawEntry,
  activityView,
  auditView,
  deadView,
  entryData,
  feedItem,
  sessionView,
  text,
} from './console-views';
import { FEED_STREAM_KEYS, FeedStreamKey, formatCursor } from './feed-cursor';
import { LiveFeed } from './live-feed.service';
import { StreamRates, healthStreams } from './stream-rates.service';

/** Bounds of every read the console makes: what one page load may cost, whatever the fleet size. */
export const CONSOLE_LIMITS = {
  /** Live sessions listed at once (the page paginates them). */
  sessions: 5000,
  /** Ended sessions (culled, deregistered) from the archive. */
  ended: 200,
  locks: 5000,
  orders: 500,
  jobs: 500,
  activity: 300,
  /** Newest ingest entries scanned for failed ops (lock conflicts) at page load. */
  conflictScan: 2000,
  audit: 100,
  deadPerStream: 20,
  timeline: 300,
  /** Entries of the activity stream scanned for one session's page. */
  activityScan: 5000,
  episodes: 1000,
  search: 50,
} as const;

const DEAD_KEYS = FEED_STREAM_KEYS.filter((k) => k.startsWith('d')) as FeedStreamKey[];

/** A job as the page may see it: no argv, env, cwd or secret names. */
export function jobView(j: JobMeta): Record<string, unknown> {
  return { job: j.id, ...jobIdentity(j), ...jobOutcome(j), host: j.host };
}

function lockView(h: Record<string, string>): Record<string, unknown> | null {
  if (!h.resource) return null;
  return {
    resource: h.resource,
    owner: h.owner_session_id,
    acquired_at: h.acquired_at ?? null,
    expires_at: h.expires_at || null,
    reason: text(h.reason, 300),
  };
}

function orderView(h: Record<string, string>): Record<string, unknown> | null {
  if (!h.order_id) return null;
  return {
    order_id: h.order_id,
    assignee: h.assignee,
    ticket: text(h.ticket, 300),
    issued_by: h.issued_by,
    issued_at: h.issued_at,
    // Order states (ack, done, reject) arrive with issue 14; until then every order is pending.
    state: h.state || 'pending',
    note: text(h.note, 300),
  };
}

/** The console's reads: one snapshot per page load, then pages of detail on demand. */
@Injectable()
export class ConsoleReadService {
  private readonly coord: CoordStore;

  constructor(
    private readonly redis: ConsoleRedis,
    private readonly feed: LiveFeed,
    private readonly archive: ArchiveQueryService,
    private readonly rates: StreamRates,
    @Inject(ARCHIVIST_CONFIG) private readonly config: ArchivistConfig,
  ) {
    this.coord = new CoordStore(redis.redis, { keyspace: redis.keyspace });
  }

  private key(suffix: string): string {
    return this.redis.keyspace.coordKey(suffix);
  }

  /**
   * Everything the page shows at load, bounded by CONSOLE_LIMITS. The feed cursor is taken
   * FIRST: an event written while the snapshot is read is then also delivered by the feed
   * (applying it twice is harmless), never lost between the two.
   */
  async snapshot(): Promise<Record<string, unknown>> {
    const cursor = formatCursor(await this.feed.freshCursor());
    const r = this.redis;
    const [now, sessionIds, lockIds, orderIds, jobIds, activity, audit, dead, ended, ingest] =
      await Promise.all([
        r.time(),
        r.newestMembers(this.key('sessions'), CONSOLE_LIMITS.sessions),
        r.newestMembers(this.key('locks'), CONSOLE_LIMITS.locks),
        r.newestMembers(this.key('dispatches'), CONSOLE_LIMITS.orders),
        r.newestMembers(r.keyspace.jobKey('all'), CONSOLE_LIMITS.jobs),
        r.latest(r.keyspace.activityStream, CONSOLE_LIMITS.activity),
        r.latest(r.keyspace.auditStream, CONSOLE_LIMITS.audit),
        Promise.all(DEAD_KEYS.map((k) => r.latest(r.streams[k], CONSOLE_LIMITS.deadPerStream))),
        this.archive.recentlyEnded(CONSOLE_LIMITS.ended).catch(() => []),
        r.latest(r.keyspace.coordIngest, CONSOLE_LIMITS.conflictScan),
      ]);
    const failed = ingest.flatMap((e) => feedItem('ci', e) ?? []).reverse();
    const holders = await r.lockHolders([
      ...new Set(failed.map((f) => String(f.resource ?? '')).filter(Boolean)),
    ]);
    for (const f of failed) f.holder = holders.get(String(f.resource)) ?? null;
    const [sessionHashes, lockHashes, orderHashes, jobHashes, depths, lastActivity] = await Promise.all([
      r.hashes(sessionIds.map((s) => this.key(`session:${s}`))),
      r.hashes(lockIds.map((l) => this.key(`lock:${l}`))),
      r.hashes(orderIds.map((o) => this.key(`dispatch:${o}`))),
      r.hashes(jobIds.map((j) => r.keyspace.jobKey(`job:${j}`))),
      r.inboxDepths(sessionIds),
      r.lastActivity(sessionIds),
    ]);
    const sessions = sessionHashes.flatMap((h, i) => {
      const v = sessionView(h);
      if (!v) return [];
      const last = lastActivity[i];
      return [
        {
          ...v,
          inbox: depths[i] ?? 0,
          activity: last ? activityView('', last) : null,
        },
      ];
    });
    const jobs = jobHashes.flatMap((h) => {
      if (!h.id) return [];
      try {
        return [jobView(decodeMeta(h))];
      } catch {
        return [];
      }
    });
    const liveIds = new Set(sessionIds);
    return {
      cursor,
      now,
      // The deployment's TTL as stored with the coord state (what the sentinel culls by).
      session_ttl_ms: await this.coord.sessionTtl().catch(() => this.config.sessionTtlMs),
      sessions,
      ended: ended
        .filter((s) => !liveIds.has(s.session))
        .map((s) => ({
          session: s.session,
          role: s.role,
          task: s.task,
          ended_at: s.ended_at,
          end_reason: s.end_reason,
          state: s.end_reason === 'ttl-expired' ? 'culled' : 'deregistered',
        })),
      locks: lockHashes.flatMap((h) => lockView(h) ?? []),
      orders: orderHashes.flatMap((h) => orderView(h) ?? []),
      jobs,
      activity: this.items(activity, (id, d) => activityView(id, d)).reverse(),
      audit: this.items(audit, (id, d) => auditView(id, d)),
      conflicts: failed.slice(-100),
      dead: DEAD_KEYS.flatMap((k, i) => this.items(dead[i], (id, d) => deadView(k, id, d))),
    };
  }

  private items(
    entries: RawEntry[],
    view: (id: string, d: Record<string, unknown>) => FeedItem | null,
  ): FeedItem[] {
    return entries.flatMap(([id, fields]) => {
      const d = entryData(fields);
      return (d && view(id, d)) || [];
    });
  }

  /** One session's page: its record, locks, inbox depth, orders, and timeline from the archive. */
  async session(id: string): Promise<Record<string, unknown>> {
    const r = this.redis;
    const [hashes, depth, timeline, recent] = await Promise.all([
      r.hashes([this.key(`session:${id}`)]),
      r.inboxDepths([id]),
      // State changes (coord events, observations, culls), not every op envelope: a heartbeating
      // session writes ops all the time, and each state change is a coord event already.
      this.archive.events({
        session: id,
        stream: 'coordEvents,sentinelObservations',
        order: 'desc',
        limit: CONSOLE_LIMITS.timeline,
      }),
      r.latest(r.keyspace.activityStream, CONSOLE_LIMITS.activityScan),
    ]);
    const activity = this.items(recent, (eid, d) => activityView(eid, d))
      .filter((a) => a.session === id)
      .slice(0, 100);
    return {
      session: sessionView(hashes[0] ?? {}) ?? { session: id },
      inbox: depth[0] ?? 0,
      activity,
      timeline: timeline.events.map((e) => ({
        stream: e.stream,
        id: e.id,
        ts: e.ts,
        kind: e.kind,
        resource: e.resource,
        level: e.level,
        status: e.status,
        source: e.source,
        summary: summary(e.data),
      })),
      more: timeline.next_cursor !== null,
    };
  }

  /** One job as the page may see it, or null. */
  async job(id: string): Promise<Record<string, unknown> | null> {
    const [h] = await this.redis.hashes([this.redis.keyspace.jobKey(`job:${id}`)]);
    if (!h?.id) return null;
    return jobView(decodeMeta(h));
  }

  /** Telemetry episodes (stall, degraded) of the last `hours`, newest first, bounded. */
  async telemetry(hours: number): Promise<Record<string, unknown>> {
    const since = new Date(Date.now() - hours * 3_600_000).toISOString();
    const { episodes, next_cursor } = await this.archive.stallTelemetry({
      since,
      order: 'desc',
      limit: CONSOLE_LIMITS.episodes,
    });
    return {
      since,
      truncated: next_cursor !== null,
      episodes: episodes.map((e) => {
        const d = (e.detail ?? {}) as Record<string, unknown>;
        return {
          id: e.id,
          ts: e.ts,
          source: e.source,
          event: e.event,
          status: e.status,
          duration_ms: e.duration_ms,
          line: text(d.line) ?? text(d.raw) ?? null,
        };
      }),
    };
  }

  /**
   * One search box over the archive: a session id (exact) or words (a ticket, a note, a message
   * subject, a resource, a log line, an op or event kind), newest first, one page at a time. Both
   * are index lookups (the session index, the text index), so a keystroke never scans the archive.
   */
  async search(q: string, cursor?: string): Promise<Record<string, unknown>> {
    const { events, next_cursor } = await this.archive.search(q, cursor, CONSOLE_LIMITS.search);
    return {
      q,
      results: events.map((e) => ({
        stream: e.stream,
        id: e.id,
        ts: e.ts,
        kind: e.kind,
        session: e.session,
        resource: e.resource,
        status: e.status,
        summary: summary(e.data),
      })),
      next_cursor,
    };
  }

  /**
   * Every stream the services use, with its consumer groups: length, lag, pending, the oldest
   * pending entry's age, consumers with idle time; and the newest dead letters with reasons.
   * A fixed number of commands per call, whatever the traffic.
   */
  async streams(): Promise<Record<string, unknown>> {
    const ks = this.redis.keyspace;
    const all = healthStreams(ks);
    const dead = all.filter(([k]) => k.endsWith(':dead'));
    const now = await this.redis.time();
    const infos = await Promise.all(all.map(([, n]) => this.redis.streamInfo(n)));
    const deadEntries = await Promise.all(
      dead.map(([, n]) => this.redis.latest(n, CONSOLE_LIMITS.deadPerStream)),
    );
    const idMs = (id: string | null) => (id ? Number(id.split('-')[0]) : null);
    const rates = this.rates.series();
    return {
      now,
      // Per-second rates from the streams' and groups' counters, sampled by StreamRates.
      rates_t: rates.t,
      streams: all.map(([key, name], i) => {
        const info = infos[i];
        if (!info) return { key, exists: false, length: 0, groups: [] };
        return {
          key,
          exists: true,
          length: Number(info.stream.length ?? 0),
          entries_added: Number(info.stream['entries-added'] ?? info.stream.length ?? 0),
          added_rate: rates.streams[key]?.added ?? [],
          archived_rate: rates.streams[key]?.archived ?? null,
          last_id: info.stream['last-generated-id'] ?? null,
          groups: info.groups.map((g) => {
            const oldest = idMs(g.oldestPendingId);
            return {
              group: g.group.name,
              pending: Number(g.group.pending ?? 0),
              lag: g.group.lag === null || g.group.lag === undefined ? null : Number(g.group.lag),
              last_delivered: g.group['last-delivered-id'] ?? null,
              acked_rate: rates.streams[key]?.groups[String(g.group.name)]?.acked ?? [],
              delivered_rate: rates.streams[key]?.groups[String(g.group.name)]?.delivered ?? [],
              oldest_pending_age_ms: oldest === null ? null : Math.max(0, now - oldest),
              consumers: g.consumers.map((c) => ({
                name: c.name,
                pending: Number(c.pending ?? 0),
                idle_ms: Number(c.idle ?? 0),
              })),
            };
          }),
          dead_stream: name.endsWith(':dead'),
        };
      }),
      dead: dead.flatMap(([key], i) =>
        this.items(deadEntries[i], (id, d) => ({ ...deadView('dci', id, d)!, stream: key })),
      ),
    };
  }
}

/** One line describing an archived entry, from whitelisted fields only. */
function summary(data: unknown): string | null {
  if (typeof data !== 'object' || data === null) return null;
  const d = data as Record<string, unknown>;
  if (typeof d.msg === 'string') return text(d.msg, 200);
  if (typeof d.summary === 'string') return text(d.summary, 200);
  if (typeof d.reason === 'string') return text(d.reason, 200);
  const p = d.payload as Record<string, unknown> | undefined;
  if (p && typeof p === 'object') {
    const parts = [
      'task',
      'reason',
      'ticket',
      'note',
      'subject',
      'assignee',
      'to_session',
      'owner_session',
      'phase',
    ]
      .filter((k) => typeof p[k] === 'string' && p[k])
      .map((k) => `${k}=${text(p[k], 80)}`);
    return parts.join(' ') || null;
  }
  if (typeof d.status === 'string') return `${text(d.name, 80) ?? ''} ${d.status}`.trim();
  return null;
}
