import { EventFilter, SessionAggregate, SessionQuery } from './archive-store';
import { ftsQuery, parseSearch, tsQuery } from './search-text';

/** Collects parameters and hands out placeholders in the adapter's dialect (`?` or `$n`). */
export class Params {
  readonly values: unknown[] = [];
  constructor(private readonly dialect: 'sqlite' | 'postgres') {}

  add(value: unknown): string {
    this.values.push(value);
    return this.dialect === 'sqlite' ? '?' : `$${this.values.length}`;
  }

  list(values: readonly unknown[]): string {
    return values.map((v) => this.add(v)).join(', ');
  }
}

export const SELECT_COLUMNS =
  'stream, entry_id, entry_ms, entry_seq, type, version, data, ts_ms, kind, session, resource, level, status, source, natural_key, archived_ms';

/**
 * The SELECT of `queryEvents` for either dialect. Every value goes through a placeholder; only
 * fixed column names and keywords are spliced in. Null when the filter cannot match (a text
 * search without a word).
 */
export function buildEventQuery(
  filter: EventFilter,
  dialect: 'sqlite' | 'postgres',
): { sql: string; params: unknown[] } | null {
  const p = new Params(dialect);
  const where: string[] = [];
  if (filter.text !== undefined) {
    const phrases = parseSearch(filter.text);
    if (!phrases) return null;
    where.push(
      dialect === 'sqlite'
        ? `id IN (SELECT rowid FROM events_text WHERE events_text MATCH ${p.add(ftsQuery(phrases))})`
        : `search @@ ${p.add(tsQuery(phrases))}::tsquery`,
    );
  }
  if (filter.streams?.length) where.push(`stream IN (${p.list(filter.streams)})`);
  if (filter.kinds?.length) where.push(`kind IN (${p.list(filter.kinds)})`);
  if (filter.kindSuffix) {
    // Not LIKE: SQLite's is case-insensitive and both would need `%`/`_` escaped.
    const n = p.add(filter.kindSuffix.length);
    const tail = dialect === 'sqlite' ? `substr(kind, -${n})` : `right(kind, ${n})`;
    where.push(`${tail} = ${p.add(filter.kindSuffix)}`);
  }
  if (filter.sessions?.length) where.push(`session IN (${p.list(filter.sessions)})`);
  if (filter.statuses?.length) where.push(`status IN (${p.list(filter.statuses)})`);
  if (filter.resource !== undefined) where.push(`resource = ${p.add(filter.resource)}`);
  if (filter.level !== undefined) where.push(`level = ${p.add(filter.level)}`);
  if (filter.source !== undefined) where.push(`source = ${p.add(filter.source)}`);
  if (filter.sinceMs !== undefined) where.push(`ts_ms >= ${p.add(filter.sinceMs)}`);
  if (filter.untilMs !== undefined) where.push(`ts_ms <= ${p.add(filter.untilMs)}`);
  if (filter.untilEntry) {
    where.push(`(entry_ms, entry_seq) <= (${p.add(filter.untilEntry.ms)}, ${p.add(filter.untilEntry.seq)})`);
  }
  const desc = filter.order === 'desc';
  if (filter.after) {
    const a = filter.after;
    where.push(
      `(entry_ms, entry_seq, stream) ${desc ? '<' : '>'} (${p.add(a.entryMs)}, ${p.add(a.entrySeq)}, ${p.add(a.stream)})`,
    );
  }
  const dir = desc ? 'DESC' : 'ASC';
  const sql =
    `SELECT ${SELECT_COLUMNS} FROM events` +
    (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY entry_ms ${dir}, entry_seq ${dir}, stream ${dir} LIMIT ${p.add(filter.limit)}`;
  return { sql, params: p.values };
}

/** Maps a selected row (snake_case, numbers possibly as strings from pg's BIGINT) to a StoredEvent. */
export function toStoredEvent(r: Record<string, unknown>) {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  const str = (v: unknown) => (v === null || v === undefined ? null : String(v));
  return {
    stream: String(r.stream),
    entryId: String(r.entry_id),
    entryMs: Number(r.entry_ms),
    entrySeq: Number(r.entry_seq),
    type: str(r.type),
    version: num(r.version),
    data: String(r.data),
    tsMs: Number(r.ts_ms),
    kind: str(r.kind),
    session: str(r.session),
    resource: str(r.resource),
    level: str(r.level),
    status: str(r.status),
    source: str(r.source),
    naturalKey: str(r.natural_key),
    archivedMs: Number(r.archived_ms),
  };
}

const REGISTERED = "MAX(CASE WHEN kind = 'session.register' THEN ts_ms END)";
const DEREGISTERED = "MAX(CASE WHEN kind = 'session.dereg' THEN ts_ms END)";
const ENDED = `(${DEREGISTERED} IS NOT NULL AND (${REGISTERED} IS NULL OR ${DEREGISTERED} >= ${REGISTERED}))`;

/** Per-session aggregates of one coord events stream, most recently seen first. */
export function buildSessionQuery(
  q: SessionQuery,
  dialect: 'sqlite' | 'postgres',
): { sql: string; params: unknown[] } {
  const p = new Params(dialect);
  const having: string[] = [];
  const stream = p.add(q.stream);
  if (q.sinceMs !== undefined) having.push(`MAX(ts_ms) >= ${p.add(q.sinceMs)}`);
  if (q.state === 'ended') having.push(ENDED);
  if (q.state === 'active') having.push(`NOT ${ENDED}`);
  const sql =
    `SELECT session, MIN(ts_ms) AS first_ms, MAX(ts_ms) AS last_ms, COUNT(*) AS events, ` +
    `${REGISTERED} AS registered_ms, ${DEREGISTERED} AS deregistered_ms FROM events ` +
    `WHERE stream = ${stream} AND session IS NOT NULL GROUP BY session` +
    (having.length ? ` HAVING ${having.join(' AND ')}` : '') +
    ` ORDER BY last_ms DESC, session ASC LIMIT ${p.add(q.limit)}`;
  return { sql, params: p.values };
}

export function toAggregate(r: Record<string, unknown>): SessionAggregate {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    session: String(r.session),
    firstMs: Number(r.first_ms),
    lastMs: Number(r.last_ms),
    events: Number(r.events),
    registeredMs: num(r.registered_ms),
    deregisteredMs: num(r.deregistered_ms),
  };
}
