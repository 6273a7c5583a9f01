import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  ArchiveRow,
  ArchiveRowError,
  archiveUnavailable,
  ArchiveStats,
  ArchiveStore,
  EventFilter,
  INSERT_COLUMNS,
  RetentionRule,
  SessionAggregate,
  SessionQuery,
  StoredEvent,
  rowValues,
  normaliseRows,
} from './archive-store';
import { MIGRATIONS, pendingMigrations } from './migrations';
import { searchTextOfData } from './search-text';
import { buildEventQuery, buildSessionQuery, toAggregate, toStoredEvent } from './sql';
import { SqliteWriteFailure, SqliteWriter } from './sqlite-writer';

/**
 * SQLite result codes that blame the row (too big, wrong type, a NOT NULL/CHECK constraint);
 * anything else (busy, I/O, disk full, read-only, corrupt) is the database's state.
 */
const DATA_CODES = /^SQLITE_(TOOBIG|MISMATCH|RANGE|CONSTRAINT_(NOTNULL|CHECK|DATATYPE))$/;

export function isSqliteDataError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && DATA_CODES.test(code);
}

/** A row's failure inside the transaction, carrying its position out of better-sqlite3. */
class RowFailure extends Error {
  constructor(
    readonly index: number,
    override readonly cause: unknown,
  ) {
    super('row failed');
  }
}

/** Rows deleted per statement by retention, so one pass never holds the write lock for long. */
const DELETE_CHUNK = 5000;

/** Per-connection settings, for the store's connection and the writer thread's alike. */
const CONNECTION_PRAGMAS = [
  // NORMAL in WAL mode: a commit survives a process crash (SIGKILL); only an OS crash can lose the last commits.
  'synchronous = NORMAL',
  // Retention deletes on the store's connection while the writer thread inserts: each waits its turn.
  'busy_timeout = 5000',
];

const INSERT_SQL = `INSERT INTO events (${INSERT_COLUMNS.join(', ')}) VALUES (${INSERT_COLUMNS.map(() => '?').join(', ')}) ON CONFLICT DO NOTHING`;
const WORDS_SQL = 'INSERT INTO events_text (rowid, words) VALUES (?, ?)';

export interface SqliteStoreOptions {
  /**
   * Where inserts run: `thread` (default) on a worker thread with its own connection, so a commit
   * overlaps the service reading its next batch; `inline` on the caller's thread, synchronously
   * (what the benchmark measures as "the store alone").
   */
  writer?: 'thread' | 'inline';
}

/**
 * The embedded archive: one SQLite file (WAL) under the data directory. The directory is
 * created 0700 and the file 0600 because the archive holds every session's activity.
 * better-sqlite3 is synchronous; a batch of a few thousand rows commits in milliseconds, on the
 * writer thread (SqliteWriter) by default. Queries, retention and migrations use the store's
 * own connection; WAL lets them read while the writer commits.
 */
export class SqliteArchiveStore implements ArchiveStore {
  readonly kind = 'sqlite' as const;
  private db?: Database.Database;
  private insertMany?: (rows: readonly ArchiveRow[], archivedMs: number) => number;
  private writer?: SqliteWriter;
  private readonly writerMode: 'thread' | 'inline';

  constructor(
    readonly file: string,
    options: SqliteStoreOptions = {},
  ) {
    this.writerMode = options.writer ?? 'thread';
  }

  async open(): Promise<void> {
    const dir = dirname(this.file);
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    // Create the file ourselves so it is 0600 from the first byte (the WAL and SHM files copy its mode).
    if (!existsSync(this.file)) closeSync(openSync(this.file, 'a', 0o600));
    chmodSync(this.file, 0o600);
    const db = new Database(this.file);
    this.db = db;
    db.pragma('journal_mode = WAL');
    for (const p of CONNECTION_PRAGMAS) db.pragma(p);
    try {
      this.migrate(db);
      if (this.writerMode === 'thread') {
        this.writer = new SqliteWriter({
          file: this.file,
          pragmas: CONNECTION_PRAGMAS,
          insertSql: INSERT_SQL,
          wordsSql: WORDS_SQL,
          columns: INSERT_COLUMNS.length,
        });
        await this.writer.start();
        return;
      }
    } catch (err) {
      await this.writer?.close();
      this.writer = undefined;
      db.close();
      this.db = undefined;
      throw err;
    }
    const stmt = db.prepare(INSERT_SQL);
    const words = db.prepare(WORDS_SQL);
    this.insertMany = db.transaction((rows: readonly ArchiveRow[], archivedMs: number) => {
      let inserted = 0;
      rows.forEach((row, i) => {
        try {
          const res = stmt.run(rowValues(row, archivedMs));
          inserted += res.changes;
          // Only a row actually inserted gets words (a duplicate would index the old row twice).
          if (res.changes && row.text) words.run(res.lastInsertRowid, row.text);
        } catch (err) {
          throw new RowFailure(i, err);
        }
      });
      return inserted;
    });
  }

  private migrate(db: Database.Database): void {
    db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_ms INTEGER NOT NULL)',
    );
    // IMMEDIATE takes the write lock first, so two processes opening one file never both migrate.
    const run = db.transaction(() => {
      const pending = pendingMigrations(this.currentVersion(db), this.file, MIGRATIONS);
      const record = db.prepare(
        'INSERT INTO schema_migrations (version, description, applied_ms) VALUES (?, ?, ?)',
      );
      for (const m of pending) {
        for (const stmt of m.sqlite) db.exec(stmt);
        if (m.backfill === 'search-text') this.backfillSearchText(db);
        record.run(m.version, m.description, Date.now());
      }
    });
    run.immediate();
  }

  /** Indexes the words of every row archived before the text index existed, in rowid chunks. */
  private backfillSearchText(db: Database.Database): void {
    const insert = db.prepare('INSERT INTO events_text (rowid, words) VALUES (?, ?)');
    const page = db.prepare('SELECT id, type, data FROM events WHERE id > ? ORDER BY id LIMIT 5000');
    for (let after = 0; ;) {
      const rows = page.all(after) as { id: number; type: string | null; data: string }[];
      for (const r of rows) {
        const text = searchTextOfData(r.type, r.data);
        if (text) insert.run(r.id, text);
      }
      if (rows.length < 5000) break;
      after = rows[rows.length - 1].id;
    }
  }

  private currentVersion(db: Database.Database): number {
    const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
    return row.v ?? 0;
  }

  private get handle(): Database.Database {
    if (!this.db) throw new Error('SqliteArchiveStore is not open');
    return this.db;
  }

  async insertBatch(rows: readonly ArchiveRow[]): Promise<number> {
    if (!rows.length) return 0;
    if (this.writer) return this.insertOnThread(this.writer, normaliseRows(rows));
    if (!this.insertMany) throw new Error('SqliteArchiveStore is not open');
    const normalised = normaliseRows(rows);
    try {
      return this.insertMany(normalised, Date.now());
    } catch (err) {
      const cause = err instanceof RowFailure ? err.cause : err;
      if (err instanceof RowFailure && isSqliteDataError(cause)) {
        const e = cause as { message: string; code: string };
        throw new ArchiveRowError(`SQLite refused the row: ${e.message} (${e.code})`, err.index);
      }
      throw archiveUnavailable(`insert into ${this.file}`, cause);
    }
  }

  private async insertOnThread(writer: SqliteWriter, rows: readonly ArchiveRow[]): Promise<number> {
    // One flat array (the thread's row layout: INSERT parameters but archived_ms, then the
    // words): structured cloning copies it faster than an object per row.
    const width = INSERT_COLUMNS.length;
    const values = new Array<unknown>(rows.length * width);
    let k = 0;
    for (const row of rows) {
      const v = rowValues(row, 0);
      for (let c = 0; c < width - 1; c++) values[k++] = v[c];
      values[k++] = row.text ?? null;
    }
    try {
      return await writer.insert(values, Date.now());
    } catch (err) {
      if (err instanceof SqliteWriteFailure && err.index !== undefined && isSqliteDataError(err)) {
        throw new ArchiveRowError(`SQLite refused the row: ${err.message} (${err.code})`, err.index);
      }
      throw archiveUnavailable(`insert into ${this.file}`, err);
    }
  }

  async queryEvents(filter: EventFilter): Promise<StoredEvent[]> {
    const built = buildEventQuery(filter, 'sqlite');
    if (!built) return [];
    const { sql, params } = built;
    return (this.handle.prepare(sql).all(...params) as Record<string, unknown>[]).map(toStoredEvent);
  }

  async sessionAggregates(query: SessionQuery): Promise<SessionAggregate[]> {
    const { sql, params } = buildSessionQuery(query, 'sqlite');
    return (this.handle.prepare(sql).all(...params) as Record<string, unknown>[]).map(toAggregate);
  }

  async applyRetention(stream: string, rule: RetentionRule, nowMs: number): Promise<number> {
    const db = this.handle;
    let deleted = 0;
    const chunked = (where: string, params: unknown[]) => {
      const stmt = db.prepare(
        `DELETE FROM events WHERE id IN (SELECT id FROM events WHERE stream = ? AND ${where} LIMIT ${DELETE_CHUNK})`,
      );
      for (;;) {
        const n = stmt.run(stream, ...params).changes;
        deleted += n;
        if (n < DELETE_CHUNK) break;
      }
    };
    if (rule.maxAgeMs !== undefined) chunked('entry_ms < ?', [nowMs - rule.maxAgeMs]);
    if (rule.maxRows !== undefined) {
      const cutoff = db
        .prepare(
          'SELECT entry_ms, entry_seq FROM events WHERE stream = ? ORDER BY entry_ms DESC, entry_seq DESC LIMIT 1 OFFSET ?',
        )
        .get(stream, rule.maxRows) as { entry_ms: number; entry_seq: number } | undefined;
      if (cutoff) chunked('(entry_ms, entry_seq) <= (?, ?)', [cutoff.entry_ms, cutoff.entry_seq]);
    }
    return deleted;
  }

  async stats(): Promise<ArchiveStats> {
    const rows = this.handle.prepare('SELECT stream, COUNT(*) AS n FROM events GROUP BY stream').all() as {
      stream: string;
      n: number;
    }[];
    let sizeBytes = 0;
    for (const f of [this.file, `${this.file}-wal`, `${this.file}-shm`]) {
      if (existsSync(f)) sizeBytes += statSync(f).size;
    }
    return { sizeBytes, rowsByStream: Object.fromEntries(rows.map((r) => [r.stream, Number(r.n)])) };
  }

  async schemaVersion(): Promise<number> {
    return this.currentVersion(this.handle);
  }

  async close(): Promise<void> {
    const writer = this.writer;
    this.writer = undefined;
    await writer?.close();
    this.db?.close();
    this.db = undefined;
    this.insertMany = undefined;
  }
}
