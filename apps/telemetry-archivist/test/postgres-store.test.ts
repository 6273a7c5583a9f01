import { Client } from 'pg';
import { newUlid } from '@coordbus/envelope';
import { PostgresArchiveStore, pgConnectionConfig } from '../src/store/postgres-archive-store';
import { LATEST_SCHEMA_VERSION } from '../src/store/migrations';
import { describeArchiveStoreConformance } from './store-conformance';
import { PG_URL } from './harness';

async function withClient<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client(pgConnectionConfig(PG_URL));
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

describeArchiveStoreConformance('PostgreSQL', () => {
  const schema = `archivist_test_${newUlid().toLowerCase()}`;
  return {
    async create() {
      const store = new PostgresArchiveStore({ url: PG_URL, schema });
      await store.open();
      return store;
    },
    async bumpSchemaVersion(version) {
      await withClient(async (c) => {
        if (version === null)
          await c.query(`DELETE FROM "${schema}".schema_migrations WHERE version > $1`, [
            LATEST_SCHEMA_VERSION,
          ]);
        else
          await c.query(
            `INSERT INTO "${schema}".schema_migrations (version, description, applied_ms) VALUES ($1, 'future', 0)`,
            [version],
          );
      });
    },
    async cleanup() {
      await withClient((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
    },
  };
});

describe('PostgresArchiveStore replicas', () => {
  it('lets two replicas migrate and insert the same rows concurrently without duplicates', async () => {
    const schema = `archivist_test_${newUlid().toLowerCase()}`;
    const a = new PostgresArchiveStore({ url: PG_URL, schema });
    const b = new PostgresArchiveStore({ url: PG_URL, schema });
    try {
      await Promise.all([a.open(), b.open()]);
      const { coordOpRow } = await import('./store-conformance');
      const rows = Array.from({ length: 500 }, (_, i) => coordOpRow(i));
      const [na, nb] = await Promise.all([a.insertBatch(rows), b.insertBatch([...rows].reverse())]);
      expect(na + nb).toBe(500);
      expect((await a.stats()).rowsByStream).toEqual({ 'conf:coord:{ingest}': 500 });
    } finally {
      await a.close();
      await b.close();
      await withClient((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
    }
  });
});
