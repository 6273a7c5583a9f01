import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { UnavailableError } from '@coordbus/envelope';
import { SqliteArchiveStore, SqliteStoreOptions } from '../src/store/sqlite-archive-store';
import { SqliteWriteFailure, SqliteWriter } from '../src/store/sqlite-writer';
import { LATEST_SCHEMA_VERSION } from '../src/store/migrations';
import { coordOpRow, describeArchiveStoreConformance } from './store-conformance';

function sqliteHarness(options: SqliteStoreOptions) {
  return () => {
    const dir = mkdtempSync(join(tmpdir(), 'archivist-sqlite-'));
    const file = join(dir, 'data', 'archive.sqlite');
    return {
      async create() {
        const store = new SqliteArchiveStore(file, options);
        await store.open();
        return store;
      },
      async bumpSchemaVersion(version: number | null) {
        const db = new Database(file);
        if (version === null)
          db.prepare('DELETE FROM schema_migrations WHERE version > ?').run(LATEST_SCHEMA_VERSION);
        else
          db.prepare(
            "INSERT INTO schema_migrations (version, description, applied_ms) VALUES (?, 'future', 0)",
          ).run(version);
        db.close();
      },
      async downgradeToVersion1() {
        const db = new Database(file);
        db.exec(
          'DROP TRIGGER events_text_delete; DROP TABLE events_text; DELETE FROM schema_migrations WHERE version > 1',
        );
        db.close();
      },
      async cleanup() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  };
}

// What the service runs (inserts on the writer thread), and the same store inserting on the
// caller's thread (the benchmark's "store alone"): both must behave as one.
describeArchiveStoreConformance('SQLite', sqliteHarness({}));
describeArchiveStoreConformance('SQLite, inserts on the caller thread', sqliteHarness({ writer: 'inline' }));

describe('SqliteArchiveStore files', () => {
  it('creates the directory 0700 and the database 0600, in WAL mode', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'archivist-sqlite-'));
    const file = join(dir, 'nested', 'archive', 'archive.sqlite');
    const store = new SqliteArchiveStore(file);
    try {
      await store.open();
      await store.insertBatch([]);
      expect(statSync(join(dir, 'nested', 'archive')).mode & 0o777).toBe(0o700);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const db = new Database(file, { readonly: true });
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      db.close();
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SqliteArchiveStore writer thread', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'archivist-writer-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const threadOf = (store: SqliteArchiveStore): Worker =>
    (store as unknown as { writer: { worker: Worker } }).writer.worker;

  it('a writer thread that is gone is replaced: the next batch starts a new one and lands', async () => {
    const store = new SqliteArchiveStore(join(dir, 'archive.sqlite'));
    await store.open();
    try {
      expect(await store.insertBatch([coordOpRow(1)])).toBe(1);
      // Stopped between batches: better-sqlite3 aborts the process when its thread is terminated
      // inside a statement, which is why the store only ever closes its thread by message.
      const first = threadOf(store);
      await first.terminate();
      expect(await store.insertBatch([coordOpRow(1), coordOpRow(2)])).toBe(1);
      expect(threadOf(store)).not.toBe(first);
      expect(await store.queryEvents({ limit: 10 })).toHaveLength(2);
    } finally {
      await store.close();
    }
  });

  it('a database locked past busy_timeout is unavailable (retryable), not the rows’ fault', async () => {
    const file = join(dir, 'archive.sqlite');
    const store = new SqliteArchiveStore(file);
    await store.open();
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    try {
      const err = await store.insertBatch([coordOpRow(1)]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnavailableError);
      expect((err as Error).message).toMatch(/SQLITE_BUSY/);
      other.exec('ROLLBACK');
      expect(await store.insertBatch([coordOpRow(1)])).toBe(1);
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
      await store.close();
    }
  }, 20_000);

  it('a row SQLite refuses fails the whole transaction with its position and SQLite’s code', async () => {
    const file = join(dir, 'check.sqlite');
    const db = new Database(file);
    db.exec(
      'CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER CHECK (a > 0), at INTEGER); CREATE TABLE w (id, words)',
    );
    db.close();
    const writer = new SqliteWriter({
      file,
      pragmas: ['busy_timeout = 1000'],
      insertSql: 'INSERT INTO t (a, at) VALUES (?, ?)',
      wordsSql: 'INSERT INTO w (id, words) VALUES (?, ?)',
      columns: 2,
    });
    await writer.start();
    try {
      // Two values a row: a, then the words; archived_ms is the second parameter.
      const err = await writer.insert([1, 'one', -1, null, 3, null], 7).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SqliteWriteFailure);
      expect((err as SqliteWriteFailure).index).toBe(1);
      expect((err as SqliteWriteFailure).code).toBe('SQLITE_CONSTRAINT_CHECK');
      expect(await writer.insert([1, 'one', 3, null], 7)).toBe(2);
    } finally {
      await writer.close();
    }
    const check = new Database(file, { readonly: true });
    expect(check.prepare('SELECT a, at FROM t ORDER BY id').all()).toEqual([
      { a: 1, at: 7 },
      { a: 3, at: 7 },
    ]);
    expect(check.prepare('SELECT id, words FROM w').all()).toEqual([{ id: 1, words: 'one' }]);
    check.close();
  });

  it('a file the thread cannot open fails open()', async () => {
    const writer = new SqliteWriter({
      file: join(dir, 'missing-dir', 'x.sqlite'),
      pragmas: [],
      insertSql: 'SELECT 1',
      wordsSql: 'SELECT 1',
      columns: 1,
    });
    await expect(writer.start()).rejects.toThrow(/unable to open database|directory does not exist/);
    await writer.close();
  });
});
