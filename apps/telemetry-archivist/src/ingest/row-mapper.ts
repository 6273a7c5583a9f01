import { DEAD_LETTER_SUFFIX, ENTRY_FIELDS, Keyspace, SchemaKey } from '@coordbus/envelope';
import { ArchiveRow, FilterColumns } from '../store/archive-store';
import { searchText } from '../store/search-text';

/** The five durable source streams, by their Keyspace getter name. */
export const SOURCE_STREAMS = [
  'coordIngest',
  'coordEvents',
  'sentinelObservations',
  'telemetryEvents',
  'jobEvents',
] as const;
export type SourceStream = (typeof SOURCE_STREAMS)[number];

/** One archived stream: its Keyspace getter name (`coordIngest`, `coordIngest:dead`) and its full Redis name. */
export interface StreamRef {
  /** `coordIngest` or `coordIngest:dead`: the name the API and the transport use. */
  key: string;
  source: SourceStream;
  dead: boolean;
  /** Full Redis stream name, namespace included. */
  name: string;
}

const SOURCE_SCHEMAS: Readonly<Record<SourceStream, SchemaKey>> = {
  coordIngest: 'coordOp',
  coordEvents: 'coordEvent',
  sentinelObservations: 'observation',
  telemetryEvents: 'telemetry',
  jobEvents: 'jobEvent',
};

/** The schema the archivist decodes a stream with (dead-letter streams carry dead letters). */
export function defaultSchemaKey(ref: Pick<StreamRef, 'source' | 'dead'>): SchemaKey {
  return ref.dead ? 'deadLetter' : SOURCE_SCHEMAS[ref.source];
}

/** Every stream the archivist consumes (Keyspace.archivedStreams), named both ways. */
export function archivedStreamRefs(keyspace: Keyspace): StreamRef[] {
  const refs: StreamRef[] = [];
  for (const dead of [false, true]) {
    for (const source of SOURCE_STREAMS) {
      const base = keyspace[source];
      refs.push({
        key: dead ? `${source}${DEAD_LETTER_SUFFIX}` : source,
        source,
        dead,
        name: dead ? keyspace.deadLetter(base) : base,
      });
    }
  }
  return refs;
}

const ENTRY_ID = /^(\d+)-(\d+)$/;

/** Splits a stream entry id into its parts; null when it is not `<ms>-<seq>`. */
export function parseEntryId(id: string): { ms: number; seq: number } | null {
  const m = ENTRY_ID.exec(id);
  if (!m) return null;
  return { ms: Number(m[1]), seq: Number(m[2]) };
}

type Json = Record<string, unknown>;

function obj(v: unknown): Json | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : null;
}

/** A non-empty string or null (seed 000 marks absent values with ""). */
function str(v: unknown): string | null {
  return typeof v === 'string' && v.length > 0 ? v : null;
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

type Extracted = { ts: string | null } & Pick<ArchiveRow, FilterColumns | 'naturalKey'>;

const NONE: Extracted = {
  ts: null,
  kind: null,
  session: null,
  resource: null,
  level: null,
  status: null,
  source: null,
  naturalKey: null,
};

/** Key-part separator of natural keys: a control character no producer puts in a name. */
const SEP = '\u001f';

/** The filter columns of one decoded payload of a source stream; tolerant of any shape. */
export function extractColumns(source: SourceStream, payload: unknown): Extracted {
  const d = obj(payload);
  if (!d) return NONE;
  const ts = str(d.ts);
  switch (source) {
    case 'coordIngest': {
      const f = obj(d.fields) ?? {};
      return {
        ...NONE,
        ts,
        kind: str(f.op),
        session: str(f.session),
        resource: str(f.resource),
        level: str(d.level),
        source: str(d.service),
      };
    }
    case 'coordEvents': {
      const src = str(d.source);
      const tx = str(d.tx_id);
      return {
        ...NONE,
        ts,
        kind: str(d.tx_kind),
        session: str(d.session_id),
        resource: str(d.resource),
        source: src,
        naturalKey: src && tx ? `${src}${SEP}${tx}` : null,
      };
    }
    case 'sentinelObservations':
      return {
        ...NONE,
        ts,
        kind: str(d.kind),
        session: str(d.session_id),
        resource: str(d.resource),
        source: str(d.source),
      };
    case 'telemetryEvents': {
      const src = str(d.source);
      const event = str(d.event);
      const dur = typeof d.duration_ms === 'number' ? d.duration_ms : null;
      return {
        ...NONE,
        ts,
        kind: event,
        status: str(d.status),
        source: src,
        // Seed 004: the log tailer is at-least-once, and a re-emitted event carries a new entry id.
        naturalKey: src && event && ts && dur !== null ? [src, event, ts, dur].join(SEP) : null,
      };
    }
    case 'jobEvents':
      return {
        ...NONE,
        ts,
        kind: str(d.status),
        status: str(d.status),
        resource: str(d.job_id),
        source: str(d.host),
      };
  }
}

/** An entry as the archive sees it: schema name, schema version and the data JSON text. */
export interface EntryContent {
  type: string | null;
  version: number | null;
  /** JSON text of the payload (or of the whole field record for an entry not in the type/v/data shape). */
  data: string;
  /** The parsed payload when the caller already has it (saves a JSON.parse). */
  payload?: unknown;
}

/** The content of a raw field record (`type <schema> v <major> data <json>`), whatever shape it has. */
export function contentFromFields(fields: Readonly<Record<string, string>>): EntryContent {
  const standard = Object.keys(fields).every(
    (k) => k === ENTRY_FIELDS.type || k === ENTRY_FIELDS.version || k === ENTRY_FIELDS.data,
  );
  const rawData = fields[ENTRY_FIELDS.data];
  const rawVersion = fields[ENTRY_FIELDS.version];
  return {
    type: fields[ENTRY_FIELDS.type] ?? null,
    version: rawVersion !== undefined && /^\d{1,9}$/.test(rawVersion) ? Number(rawVersion) : null,
    data: standard && rawData !== undefined ? rawData : JSON.stringify(fields),
    payload: parseJson(rawData),
  };
}

/**
 * Turns one stream entry into an archive row. Never throws: an entry that is not JSON or not
 * the expected shape is still archived whole (filter columns null), so nothing is lost here.
 */
export function toArchiveRow(ref: StreamRef, entryId: string, content: EntryContent): ArchiveRow {
  const parts = parseEntryId(entryId) ?? { ms: 0, seq: 0 };
  const payload = content.payload !== undefined ? content.payload : parseJson(content.data);

  let cols: Extracted;
  if (ref.dead) {
    // A dead letter keeps the original entry; its filter columns come from that original, so
    // `?session=x` also finds what was dead-lettered for session x.
    const dl = obj(payload) ?? {};
    const original = obj(dl.fields);
    const inner = extractColumns(
      ref.source,
      parseJson(typeof original?.data === 'string' ? original.data : undefined),
    );
    cols = {
      ...inner,
      ts: str(dl.ts) ?? inner.ts,
      kind: str(dl.error_code),
      status: null,
      source: str(dl.source_stream),
      naturalKey: null,
    };
  } else {
    cols = extractColumns(ref.source, payload);
  }
  const parsedTs = cols.ts ? Date.parse(cols.ts) : NaN;
  return {
    stream: ref.name,
    entryId,
    entryMs: parts.ms,
    entrySeq: parts.seq,
    type: content.type,
    version: content.version,
    data: content.data,
    tsMs: Number.isFinite(parsedTs) ? parsedTs : parts.ms,
    kind: cols.kind,
    session: cols.session,
    resource: cols.resource,
    level: cols.level,
    status: cols.status,
    source: cols.source,
    naturalKey: cols.naturalKey,
    text: searchText(content.type, payload),
  };
}
