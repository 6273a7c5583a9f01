/**
 * The archive's storage port. Two adapters implement it (SQLite, the embedded default, and
 * PostgreSQL); one conformance suite (apps/telemetry-archivist/test/store-conformance.ts) runs
 * against both, so the services above never know which one they talk to.
 */

/** One archived stream entry, with the columns extracted for filtering. */
export interface ArchiveRow {
  /** The full Redis stream name (namespace included), e.g. `coord:{ingest}` or `coord:{ingest}:dead`. */
  stream: string;
  /** The stream entry id (`<ms>-<seq>`); (stream, entry id) is unique. */
  entryId: string;
  entryMs: number;
  entrySeq: number;
  /** The entry's `type` field (schema wire name), null when absent. */
  type: string | null;
  /** The entry's `v` field (schema major version), null when absent or not a number. */
  version: number | null;
  /** The entry's `data` field as written (JSON text), or every field as a JSON object when the entry is not in the type/v/data shape. */
  data: string;
  /** Event time in epoch ms (the payload's `ts`; the entry id's time when the payload has none). */
  tsMs: number;
  /** coord op (`fields.op`), coord event `tx_kind`, observation `kind`, telemetry `event`, job `status`, dead letter `error_code`. */
  kind: string | null;
  session: string | null;
  resource: string | null;
  level: string | null;
  /** Telemetry and job status. */
  status: string | null;
  /** Producer: coord event/observation/telemetry `source`, coord op `service`, dead letter `source_stream`. */
  source: string | null;
  /** A second idempotency key within the stream: `(source, tx_id)` for coord events, `(source, event, ts, duration_ms)` for telemetry. */
  naturalKey: string | null;
}

/** A row as stored, with the time it was archived. */
export interface StoredEvent extends ArchiveRow {
  archivedMs: number;
}

/** The position of a row in the archive's total order: (entry time, entry seq, stream). */
export interface EventPosition {
  entryMs: number;
  entrySeq: number;
  stream: string;
}

export interface EventFilter {
  streams?: string[];
  kinds?: string[];
  sessions?: string[];
  resource?: string;
  level?: string;
  statuses?: string[];
  source?: string;
  /** Event time bounds (inclusive), epoch ms. */
  sinceMs?: number;
  untilMs?: number;
  /** Only entries whose id is <= this one (inclusive; compared as (ms, seq)). */
  untilEntry?: { ms: number; seq: number };
  /** Keyset pagination: only rows strictly after (asc) or before (desc) this position. */
  after?: EventPosition;
  order?: 'asc' | 'desc';
  limit: number;
}

export interface SessionAggregate {
  session: string;
  firstMs: number;
  lastMs: number;
  events: number;
  /** Latest `session.register` event time, null when none is archived. */
  registeredMs: number | null;
  /** Latest `session.dereg` event time, null when none is archived. */
  deregisteredMs: number | null;
}

export interface SessionQuery {
  stream: string;
  /** Only sessions last seen at or after this time. */
  sinceMs?: number;
  /** ended: a dereg at or after the last register; active: every other session. */
  state?: 'active' | 'ended';
  limit: number;
}

export interface RetentionRule {
  /** Rows whose entry time is older than now - maxAgeMs are deleted. */
  maxAgeMs?: number;
  /** Only the newest maxRows rows of the stream are kept. */
  maxRows?: number;
}

export interface ArchiveStats {
  sizeBytes: number;
  rowsByStream: Record<string, number>;
}

export interface ArchiveStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Opens the database and applies pending migrations; refuses a schema newer than this code. */
  open(): Promise<void>;
  /** Inserts the rows in ONE transaction, skipping any that already exist; resolves to the number inserted, after commit. */
  insertBatch(rows: readonly ArchiveRow[]): Promise<number>;
  /** Rows matching the filter in (entry time, seq, stream) order; at most `limit`. */
  queryEvents(filter: EventFilter): Promise<StoredEvent[]>;
  /** Per-session aggregates of a coord events stream, most recently seen first. */
  sessionAggregates(query: SessionQuery): Promise<SessionAggregate[]>;
  /** Applies one stream's retention rule; resolves to the number of rows deleted. */
  applyRetention(stream: string, rule: RetentionRule, nowMs: number): Promise<number>;
  stats(): Promise<ArchiveStats>;
  /** The schema version the open database is at. */
  schemaVersion(): Promise<number>;
  close(): Promise<void>;
}

/** Nest injection token of the ArchiveStore. */
export const ARCHIVE_STORE = Symbol('ARCHIVE_STORE');

/** Column order shared by both adapters' INSERT statements. */
export const INSERT_COLUMNS = [
  'stream',
  'entry_id',
  'entry_ms',
  'entry_seq',
  'type',
  'version',
  'data',
  'ts_ms',
  'kind',
  'session',
  'resource',
  'level',
  'status',
  'source',
  'natural_key',
  'archived_ms',
] as const;

/** The row's values in INSERT_COLUMNS order. */
export function rowValues(row: ArchiveRow, archivedMs: number): unknown[] {
  return [
    row.stream,
    row.entryId,
    row.entryMs,
    row.entrySeq,
    row.type,
    row.version,
    row.data,
    row.tsMs,
    row.kind,
    row.session,
    row.resource,
    row.level,
    row.status,
    row.source,
    row.naturalKey,
    archivedMs,
  ];
}
