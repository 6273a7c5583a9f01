import { createHash } from 'node:crypto';
import { InvalidError, UnavailableError } from '@coordbus/envelope';
import { searchTextOfData } from './search-text';

/**
 * The archive's storage port. Two adapters implement it (SQLite, the embedded default, and
 * PostgreSQL); one conformance suite (apps/telemetry-archivist/test/store-conformance.ts) runs
 * against both, so the services above never know which one they talk to.
 */

/** One archived stream entry, with the columns extracted for filtering. */
/** The filter columns every stored row has besides its identity, payload and times. */
export type FilterColumns = 'kind' | 'session' | 'resource' | 'level' | 'status' | 'source';

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
  /**
   * The row's search words (`searchText`), space-separated; null when it has none. Left out, the
   * store derives it from `type` and `data` (the ingest passes it: it has the payload parsed).
   */
  text?: string | null;
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
  /** Free-text search (`parseSearch`): rows holding every term; a query without a word matches nothing. */
  text?: string;
  kinds?: string[];
  /** Only rows whose kind ends with this (case-sensitive), e.g. telemetry episodes' `.episode`. */
  kindSuffix?: string;
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
  /**
   * Inserts the rows in ONE transaction, skipping any that already exist; resolves to the number
   * inserted, after commit. Rows are normalised first (`normaliseRow`, the same in every adapter).
   * Rejects with `ArchiveRowError` when a row cannot be stored (the data's fault: nothing of the
   * batch is written, `index` names the row when known) and with `UnavailableError` (retryable)
   * when the database cannot be reached or fails for any other reason.
   */
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

/**
 * A row the archive cannot hold, whatever the state of the database: retrying cannot help, and
 * the rest of its batch is unaffected (the ingest splits the batch around it).
 */
export class ArchiveRowError extends InvalidError {
  constructor(
    reason: string,
    /** Position of the offending row in the batch given to insertBatch, when known. */
    readonly index?: number,
  ) {
    super(reason);
  }
}

/** The database is down or failing: the batch must be retried later, never dead-lettered. */
export function archiveUnavailable(where: string, err: unknown): UnavailableError {
  const e = err as { message?: string; code?: string };
  return new UnavailableError(
    `archive database ${where} failed: ${e?.message ?? String(err)}${e?.code ? ` (${e.code})` : ''}`,
    { code: e?.code },
  );
}

/**
 * Largest filter-column value kept as is, in UTF-8 bytes. PostgreSQL's btree refuses index
 * entries over ~2700 bytes (session and natural_key are indexed); SQLite has no limit, so
 * both stores cap at the same, lower bound.
 */
export const KEY_MAX_BYTES = 1024;
/** Prefix kept of an over-long value; the rest is replaced by a digest of the whole. */
const KEY_PREFIX_BYTES = KEY_MAX_BYTES - 64;

const NUL = '\u0000';
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Any surrogate at all: almost no text has one, so the lookaround scan runs only when it can matter. */
const ANY_SURROGATE = /[\uD800-\uDFFF]/;

/** Lone UTF-16 surrogates (no UTF-8 form: each driver would substitute its own way) become U+FFFD. */
function wellFormed(v: string): string {
  return ANY_SURROGATE.test(v) ? v.replace(LONE_SURROGATE, '\uFFFD') : v;
}

/** Text either store holds identically: NUL and lone UTF-16 surrogates become U+FFFD. */
function storableText(v: string): string {
  return wellFormed(v.includes(NUL) ? v.split(NUL).join('\uFFFD') : v);
}

/**
 * A filter value both stores can index: storable text, and when longer than KEY_MAX_BYTES its
 * first bytes plus `…sha256:<16 hex>` of the whole, so distinct values stay distinct (a natural
 * key still dedups exactly) while equal values stay equal.
 */
export function storableKey(v: string | null): string | null {
  if (v === null) return null;
  const text = storableText(v);
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short values need no byte count.
  if (text.length * 3 <= KEY_MAX_BYTES || Buffer.byteLength(text) <= KEY_MAX_BYTES) return text;
  const digest = createHash('sha256').update(text).digest('hex').slice(0, 16);
  let prefix = Buffer.from(text).subarray(0, KEY_PREFIX_BYTES).toString();
  // A cut inside a multi-byte character decodes to U+FFFD at the end: drop it.
  if (prefix.endsWith('\uFFFD') && !text.startsWith(prefix)) prefix = prefix.slice(0, -1);
  return `${prefix}…sha256:${digest}`;
}

/**
 * What every adapter stores for a row (README "Archive": what is normalised). Filter columns go
 * through storableKey. `data` keeps its full length; a NUL in it (which PostgreSQL text cannot
 * hold, and JSON allows only escaped) is written as the JSON escape `\u0000`, so JSON data keeps
 * its value; lone surrogates become U+FFFD. Throws ArchiveRowError for what no store can
 * represent faithfully (an entry id beyond 2^53).
 */
export function normaliseRow(row: ArchiveRow, index?: number): ArchiveRow {
  if (!Number.isSafeInteger(row.entryMs) || !Number.isSafeInteger(row.entrySeq) || row.entryMs < 0) {
    throw new ArchiveRowError(
      `entry id ${row.entryId} is beyond what the archive stores exactly (each part up to 2^53-1)`,
      index,
    );
  }
  if (!Number.isSafeInteger(row.tsMs)) {
    throw new ArchiveRowError(`event time ${row.tsMs} of entry ${row.entryId} is not a safe integer`, index);
  }
  return {
    ...row,
    stream: storableText(row.stream),
    entryId: storableText(row.entryId),
    type: storableKey(row.type),
    data: wellFormed(row.data.includes(NUL) ? row.data.split(NUL).join('\\u0000') : row.data),
    kind: storableKey(row.kind),
    session: storableKey(row.session),
    resource: storableKey(row.resource),
    level: storableKey(row.level),
    status: storableKey(row.status),
    source: storableKey(row.source),
    naturalKey: storableKey(row.naturalKey),
    // Words hold letters, marks and digits only: nothing to normalise.
    text: row.text === undefined ? searchTextOfData(row.type, row.data) : row.text,
  };
}

/** normaliseRow over a batch, naming the offending row's position. */
export function normaliseRows(rows: readonly ArchiveRow[]): ArchiveRow[] {
  return rows.map((r, i) => normaliseRow(r, i));
}
