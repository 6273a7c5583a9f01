import { BadRequestException, Inject, Injectable } from '@nestjs/common';
import { parseTimePoint, TIME_POINT_FORMS } from '@coordbus/config';
import { episodeEventName, TELEMETRY_EPISODE_SUFFIX } from '@coordbus/envelope';
import {
  ARCHIVE_STORE,
  ArchiveRow,
  ArchiveStore,
  EventFilter,
  EventPosition,
  FilterColumns,
  StoredEvent,
} from '../store/archive-store';
import { StreamRef, parseEntryId } from '../ingest/row-mapper';
import { STREAM_REFS } from '../tokens';
import { decodeCursor, encodeCursor } from './cursor';
import { DEFAULT_PAGE, EpisodesQueryDto, EventsQueryDto, SessionsQueryDto } from './query.dto';

/** One archived entry as the API returns it. */
export interface EventView extends Pick<ArchiveRow, FilterColumns> {
  /** Stream key: `coordIngest`, `telemetryEvents:dead`, ... */
  stream: string;
  /** Stream entry id. */
  id: string;
  /** Event time (the payload's ts, else the entry's). */
  ts: string;
  type: string | null;
  v: number | null;
  archived_at: string;
  /** The entry's payload (the envelope, event, dead letter...). */
  data: unknown;
}

export interface SessionView {
  session: string;
  state: 'active' | 'ended';
  first_seen: string;
  last_seen: string;
  events: number;
  registered_at: string | null;
  ended_at: string | null;
  /** `explicit` (coord dereg), `ttl-expired` (sentinel cull) or what the caller gave; null while active. */
  end_reason: string | null;
  role: string | null;
  task: string | null;
}

/** An ended session as the console lists it. */
export type EndedSession = Pick<SessionView, 'session' | 'ended_at' | 'end_reason' | 'role' | 'task'>;

export interface EpisodeView {
  id: string;
  ts: string;
  source: string | null;
  event: string | null;
  status: string | null;
  duration_ms: number | null;
  detail: unknown;
}

const iso = (ms: number) => new Date(ms).toISOString();
const list = (raw?: string) => (raw === undefined ? undefined : raw.split(',').map((s) => s.trim()));

function parseData(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const text = (v: unknown) => (typeof v === 'string' ? v : null);

/** A coord event's `payload` object ({} when the row holds none). */
function payloadOf(e: StoredEvent): Record<string, unknown> {
  const data = parseData(e.data);
  const payload =
    typeof data === 'object' && data !== null ? (data as { payload?: unknown }).payload : undefined;
  return typeof payload === 'object' && payload !== null ? (payload as Record<string, unknown>) : {};
}

/** Reads the archive for the HTTP API: filters, keyset pagination, sessions, telemetry episodes. */
@Injectable()
export class ArchiveQueryService {
  private readonly byKey: Map<string, StreamRef>;
  private readonly byName: Map<string, StreamRef>;

  constructor(
    @Inject(ARCHIVE_STORE) private readonly store: ArchiveStore,
    @Inject(STREAM_REFS) refs: StreamRef[],
  ) {
    this.byKey = new Map(refs.map((r) => [r.key, r]));
    this.byName = new Map(refs.map((r) => [r.name, r]));
  }

  private streamName(key: string): string {
    const ref = this.byKey.get(key);
    if (!ref) throw new BadRequestException(`unknown stream ${key}`);
    return ref.name;
  }

  /** `since`/`until` in any form `parseTimePoint` reads; relative ones count back from this request. */
  private timeBounds(since?: string, until?: string): { sinceMs?: number; untilMs?: number } {
    const now = Date.now();
    const at = (name: string, raw: string | undefined) => {
      if (raw === undefined) return undefined;
      const ms = parseTimePoint(raw, now);
      if (ms === undefined) throw new BadRequestException(`${name} must be ${TIME_POINT_FORMS}`);
      return ms;
    };
    const sinceMs = at('since', since);
    const untilMs = at('until', until);
    if (sinceMs !== undefined && untilMs !== undefined && sinceMs > untilMs) {
      throw new BadRequestException('since must not be after until');
    }
    return { sinceMs, untilMs };
  }

  /** Runs a filter one page at a time; the next cursor is set only when more rows exist. */
  private async page(
    filter: Omit<EventFilter, 'limit' | 'after'>,
    cursor: string | undefined,
    limit: number,
  ) {
    const order = filter.order ?? 'asc';
    const after = this.after(cursor, order);
    const rows = await this.store.queryEvents({ ...filter, order, after, limit: limit + 1 });
    return this.cut(rows, limit, order);
  }

  private after(cursor: string | undefined, order: 'asc' | 'desc'): EventPosition | undefined {
    if (cursor === undefined) return undefined;
    let after;
    try {
      after = decodeCursor(cursor);
    } catch (err) {
      throw new BadRequestException((err as Error).message);
    }
    if (after.order !== order) throw new BadRequestException(`cursor was made for order=${after.order}`);
    return after;
  }

  /** The first `limit` of up to limit + 1 rows, and the cursor after them when there are more. */
  private cut(rows: StoredEvent[], limit: number, order: 'asc' | 'desc') {
    const more = rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    const last = page[page.length - 1];
    const next =
      more && last
        ? encodeCursor({ entryMs: last.entryMs, entrySeq: last.entrySeq, stream: last.stream, order })
        : null;
    return { rows: page, next_cursor: next };
  }

  /**
   * One search box: the entries of session `q` (exact: the session index) and those holding the
   * words of `q` (the text index), newest first, one keyset page over both. Each part reads at
   * most limit + 1 rows after the cursor, so the merged page is exact and bounded.
   */
  async search(
    q: string,
    cursor: string | undefined,
    limit: number,
  ): Promise<{ events: EventView[]; next_cursor: string | null }> {
    const after = this.after(cursor, 'desc');
    const page = { order: 'desc' as const, after, limit: limit + 1 };
    const [byText, bySession] = await Promise.all([
      this.store.queryEvents({ ...page, text: q }),
      this.store.queryEvents({ ...page, sessions: [q] }),
    ]);
    const seen = new Set<string>();
    const merged = [...byText, ...bySession]
      .filter((r) => {
        const k = `${r.stream}\u0000${r.entryId}`;
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      })
      .sort(
        (a, b) =>
          b.entryMs - a.entryMs ||
          b.entrySeq - a.entrySeq ||
          (a.stream < b.stream ? 1 : a.stream > b.stream ? -1 : 0),
      );
    const { rows, next_cursor } = this.cut(merged.slice(0, limit + 1), limit, 'desc');
    return { events: rows.map((r) => this.view(r)), next_cursor };
  }

  view(row: StoredEvent): EventView {
    return {
      stream: this.byName.get(row.stream)?.key ?? row.stream,
      id: row.entryId,
      ts: iso(row.tsMs),
      type: row.type,
      v: row.version,
      kind: row.kind,
      session: row.session,
      resource: row.resource,
      level: row.level,
      status: row.status,
      source: row.source,
      archived_at: iso(row.archivedMs),
      data: parseData(row.data),
    };
  }

  async events(q: EventsQueryDto): Promise<{ events: EventView[]; next_cursor: string | null }> {
    if (q.kind !== undefined && q.op !== undefined)
      throw new BadRequestException('give kind or op, not both');
    let untilEntry;
    if (q.until_id !== undefined) {
      const parts = parseEntryId(q.until_id);
      if (!parts || !Number.isSafeInteger(parts.ms) || !Number.isSafeInteger(parts.seq)) {
        throw new BadRequestException('until_id must be a stream entry id like 1700000000000-0');
      }
      untilEntry = parts;
    }
    const { rows, next_cursor } = await this.page(
      {
        streams: list(q.stream)?.map((k) => this.streamName(k)),
        kinds: list(q.kind ?? q.op),
        sessions: q.session === undefined ? undefined : [q.session],
        resource: q.resource,
        level: q.level,
        statuses: list(q.status),
        source: q.source,
        text: q.q,
        ...this.timeBounds(q.since, q.until),
        untilEntry,
        order: q.order,
      },
      q.cursor,
      q.limit ?? DEFAULT_PAGE,
    );
    return { events: rows.map((r) => this.view(r)), next_cursor };
  }

  async sessions(q: SessionsQueryDto): Promise<{ sessions: SessionView[] }> {
    const stream = this.streamName('coordEvents');
    const { sinceMs } = this.timeBounds(q.since);
    const aggregates = await this.store.sessionAggregates({
      stream,
      sinceMs,
      state: q.state,
      limit: q.limit ?? DEFAULT_PAGE,
    });
    if (!aggregates.length) return { sessions: [] };
    // The latest register (role, task) and dereg (reason) of each session, newest first.
    const details = await this.store.queryEvents({
      streams: [stream],
      kinds: ['session.register', 'session.dereg'],
      sessions: aggregates.map((a) => a.session),
      order: 'desc',
      limit: 10_000,
    });
    const latest = new Map<string, Record<string, unknown>>();
    for (const d of details) {
      const k = `${d.session}\u0000${d.kind}`;
      if (!latest.has(k)) latest.set(k, payloadOf(d));
    }
    return {
      sessions: aggregates.map((a) => {
        const ended =
          a.deregisteredMs !== null && (a.registeredMs === null || a.deregisteredMs >= a.registeredMs);
        const reg = latest.get(`${a.session}\u0000session.register`);
        const dereg = latest.get(`${a.session}\u0000session.dereg`);
        return {
          session: a.session,
          state: ended ? 'ended' : 'active',
          first_seen: iso(a.firstMs),
          last_seen: iso(a.lastMs),
          events: a.events,
          registered_at: a.registeredMs === null ? null : iso(a.registeredMs),
          ended_at: ended ? iso(a.deregisteredMs as number) : null,
          end_reason: ended ? (text(dereg?.reason) ?? 'unknown') : null,
          role: text(reg?.role),
          task: text(reg?.task),
        };
      }),
    };
  }

  /**
   * The sessions that ended last (newest `session.dereg` first), with role and task from their
   * latest register: two index reads whose cost follows `limit`, where `sessions({state:'ended'})`
   * groups every coord event of the archive (the console's page load must not grow with it).
   */
  async recentlyEnded(limit: number): Promise<EndedSession[]> {
    const stream = this.streamName('coordEvents');
    const ends = new Map<string, StoredEvent>();
    const deregs = await this.store.queryEvents({
      streams: [stream],
      kinds: ['session.dereg'],
      order: 'desc',
      limit,
    });
    for (const d of deregs) if (d.session && !ends.has(d.session)) ends.set(d.session, d);
    if (!ends.size) return [];
    // By session only, the stream checked here: with the stream in the filter the planner walks
    // every row of the stream instead of the session index.
    const registers = new Map<string, StoredEvent>();
    const regs = await this.store.queryEvents({
      kinds: ['session.register'],
      sessions: [...ends.keys()],
      order: 'desc',
      limit: 10 * limit,
    });
    for (const r of regs) {
      if (r.stream === stream && r.session && !registers.has(r.session)) registers.set(r.session, r);
    }
    return [...ends.values()].flatMap((d) => {
      const reg = registers.get(d.session as string);
      // Registered again since: not ended (live, or its end is not archived yet).
      if (reg && reg.tsMs > d.tsMs) return [];
      const p = reg ? payloadOf(reg) : {};
      return [
        {
          session: d.session as string,
          ended_at: iso(d.tsMs),
          end_reason: text(payloadOf(d).reason) ?? 'unknown',
          role: text(p.role),
          task: text(p.task),
        },
      ];
    });
  }

  /**
   * Stall episodes only (`GET /v1/telemetry/episodes`): telemetry events named
   * `<event>.episode` (libs/envelope `TELEMETRY_EPISODE_SUFFIX`), never the per-line breaches.
   * `event` may name the observer's event (`headroom.overhead`) or its episodes.
   */
  episodes(q: EpisodesQueryDto): Promise<{ episodes: EpisodeView[]; next_cursor: string | null }> {
    return this.telemetry(
      { ...q, event: q.event === undefined ? undefined : episodeEventName(q.event) },
      TELEMETRY_EPISODE_SUFFIX,
    );
  }

  /** Breaches and episodes alike (stall and degraded by default): the console's telemetry view. */
  stallTelemetry(q: EpisodesQueryDto): Promise<{ episodes: EpisodeView[]; next_cursor: string | null }> {
    return this.telemetry(q);
  }

  private async telemetry(
    q: EpisodesQueryDto,
    kindSuffix?: string,
  ): Promise<{ episodes: EpisodeView[]; next_cursor: string | null }> {
    const { rows, next_cursor } = await this.page(
      {
        streams: [this.streamName('telemetryEvents')],
        kinds: q.event === undefined ? undefined : [q.event],
        kindSuffix,
        source: q.source,
        statuses: list(q.status) ?? ['stall', 'degraded'],
        ...this.timeBounds(q.since, q.until),
        order: q.order,
      },
      q.cursor,
      q.limit ?? DEFAULT_PAGE,
    );
    return {
      episodes: rows.map((r) => {
        const d = parseData(r.data) as Record<string, unknown>;
        return {
          id: r.entryId,
          ts: iso(r.tsMs),
          source: r.source,
          event: r.kind,
          status: r.status,
          duration_ms: typeof d?.duration_ms === 'number' ? d.duration_ms : null,
          detail: d?.detail ?? null,
        };
      }),
      next_cursor,
    };
  }
}
