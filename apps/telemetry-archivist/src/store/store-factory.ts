import { ArchiveStore } from './archive-store';
import { PostgresArchiveStore } from './postgres-archive-store';
import { SqliteArchiveStore } from './sqlite-archive-store';

export interface StoreSelection {
  sqliteFile: string;
  databaseUrl?: string;
  pgSchema?: string;
}

/** PostgreSQL when DATABASE_URL is set, else the embedded SQLite file. Not opened yet. */
export function createArchiveStore(sel: StoreSelection): ArchiveStore {
  if (sel.databaseUrl) return new PostgresArchiveStore({ url: sel.databaseUrl, schema: sel.pgSchema });
  return new SqliteArchiveStore(sel.sqliteFile);
}
