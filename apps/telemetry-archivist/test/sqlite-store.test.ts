import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteArchiveStore } from '../src/store/sqlite-archive-store';
import { LATEST_SCHEMA_VERSION } from '../src/store/migrations';
import { describeArchiveStoreConformance } from './store-conformance';

describeArchiveStoreConformance('SQLite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'archivist-sqlite-'));
  const file = join(dir, 'data', 'archive.sqlite');
  return {
    async create() {
      const store = new SqliteArchiveStore(file);
      await store.open();
      return store;
    },
    async bumpSchemaVersion(version) {
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
});

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
