import { CoordbusError, ErrorCode } from '@coordbus/envelope';

/**
 * Versioned schema migrations, applied in order inside one transaction each and recorded in
 * `schema_migrations`. Append new versions; never edit an applied one.
 */
export interface Migration {
  version: number;
  description: string;
  sqlite: string[];
  postgres: string[];
  /**
   * Work SQL cannot do, run by the adapter after the statements and in the same transaction:
   * `search-text` fills the text index for the rows already archived (their words are cut in
   * TypeScript, see search-text.ts).
   */
  backfill?: 'search-text';
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'events table with per-stream entry id and natural-key uniqueness',
    sqlite: [
      `CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        stream TEXT NOT NULL,
        entry_id TEXT NOT NULL,
        entry_ms INTEGER NOT NULL,
        entry_seq INTEGER NOT NULL,
        type TEXT,
        version INTEGER,
        data TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        kind TEXT,
        session TEXT,
        resource TEXT,
        level TEXT,
        status TEXT,
        source TEXT,
        natural_key TEXT,
        archived_ms INTEGER NOT NULL
      )`,
      'CREATE UNIQUE INDEX events_stream_entry ON events (stream, entry_ms, entry_seq)',
      'CREATE UNIQUE INDEX events_stream_natural ON events (stream, natural_key) WHERE natural_key IS NOT NULL',
      'CREATE INDEX events_order ON events (entry_ms, entry_seq, stream)',
      'CREATE INDEX events_session ON events (session)',
      'CREATE INDEX events_ts ON events (ts_ms)',
    ],
    postgres: [
      `CREATE TABLE events (
        id BIGSERIAL PRIMARY KEY,
        stream TEXT NOT NULL,
        entry_id TEXT NOT NULL,
        entry_ms BIGINT NOT NULL,
        entry_seq BIGINT NOT NULL,
        type TEXT,
        version INTEGER,
        data TEXT NOT NULL,
        ts_ms BIGINT NOT NULL,
        kind TEXT,
        session TEXT,
        resource TEXT,
        level TEXT,
        status TEXT,
        source TEXT,
        natural_key TEXT,
        archived_ms BIGINT NOT NULL
      )`,
      'CREATE UNIQUE INDEX events_stream_entry ON events (stream, entry_ms, entry_seq)',
      'CREATE UNIQUE INDEX events_stream_natural ON events (stream, natural_key) WHERE natural_key IS NOT NULL',
      'CREATE INDEX events_order ON events (entry_ms, entry_seq, stream)',
      'CREATE INDEX events_session ON events (session)',
      'CREATE INDEX events_ts ON events (ts_ms)',
    ],
  },
  {
    version: 2,
    description: 'text search index (words of ticket, notes, subjects, resources, log lines)',
    sqlite: [
      // Contentless: the words live only in the index (the row keeps its data); contentless_delete
      // lets retention's DELETE remove them by rowid. `ascii`: the words are cut before (search-text.ts).
      "CREATE VIRTUAL TABLE events_text USING fts5(words, content='', contentless_delete=1, tokenize='ascii')",
      'CREATE TRIGGER events_text_delete AFTER DELETE ON events BEGIN DELETE FROM events_text WHERE rowid = old.id; END',
    ],
    postgres: [
      'ALTER TABLE events ADD COLUMN search tsvector',
      'CREATE INDEX events_search ON events USING gin (search)',
    ],
    backfill: 'search-text',
  },
];

/** The schema version this code writes and reads. */
export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/** The database was migrated by a newer coordbus: opening it could corrupt it, so the archivist refuses. */
export class ArchiveSchemaTooNewError extends CoordbusError {
  readonly code = ErrorCode.SchemaMismatch;
  constructor(
    readonly where: string,
    readonly found: number,
    readonly supported: number,
  ) {
    super(
      `archive database ${where} has schema version ${found}, newer than the ${supported} this telemetry-archivist supports; upgrade coordbus or point it at another database`,
      { where, found, supported },
    );
  }
}

/** Migrations still to apply to a database at `current`; throws when the database is ahead of the code. */
export function pendingMigrations(
  current: number,
  where: string,
  migrations: readonly Migration[] = MIGRATIONS,
): Migration[] {
  const latest = migrations.length ? migrations[migrations.length - 1].version : 0;
  if (current > latest) throw new ArchiveSchemaTooNewError(where, current, latest);
  return migrations.filter((m) => m.version > current);
}
