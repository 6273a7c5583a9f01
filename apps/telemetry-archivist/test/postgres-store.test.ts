import { Client } from 'pg';
import { newUlid } from '@coordbus/envelope';
import { PostgresArchiveStore, pgConnectionConfig } from '../src/store/postgres-archive-store';
import { LATEST_SCHEMA_VERSION } from '../src/store/migrations';
import { describeArchiveStoreConformance } from './store-conformance';
import { PG_URL, PgProxy } from './harness';

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
    async downgradeToVersion1() {
      await withClient(async (c) => {
        await c.query(`ALTER TABLE "${schema}".events DROP COLUMN search`);
        await c.query(`DELETE FROM "${schema}".schema_migrations WHERE version > 1`);
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

describe('PostgresArchiveStore failures: the data or the database', () => {
  it('classifies real PostgreSQL errors: data exceptions blame the row, everything else the database', async () => {
    const { isPgDataError } = await import('../src/store/postgres-archive-store');
    const errorOf = (sql: string) =>
      withClient((c) =>
        c.query(sql).then(
          () => null,
          (e: unknown) => e,
        ),
      );
    expect(isPgDataError(await errorOf("SELECT 'x'::int"))).toBe(true); // 22P02
    expect(isPgDataError(await errorOf('SELECT chr(0)'))).toBe(true); // 54000
    expect(isPgDataError(await errorOf('SELECT * FROM no_such_table'))).toBe(false); // 42P01
    const refused = await new Client({ connectionString: 'postgresql://127.0.0.1:1/test' })
      .connect()
      .catch((e: unknown) => e);
    expect(isPgDataError(refused)).toBe(false); // ECONNREFUSED
  });

  it('a database that stops answering mid-query (no reset) fails the insert as UnavailableError within the query timeout', async () => {
    const { UnavailableError } = await import('@coordbus/envelope');
    const { coordOpRow } = await import('./store-conformance');
    const proxy = await new PgProxy().start();
    const schema = `archivist_test_${newUlid().toLowerCase()}`;
    const store = new PostgresArchiveStore({ url: proxy.url, schema, queryTimeoutMs: 1500 });
    try {
      await store.open();
      expect(await store.insertBatch([coordOpRow(1)])).toBe(1);
      proxy.stall();
      const started = Date.now();
      const err = await store.insertBatch([coordOpRow(2)]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnavailableError);
      expect((err as InstanceType<typeof UnavailableError>).retryable).toBe(true);
      expect(Date.now() - started).toBeLessThan(10_000);
      // Back once the partition heals: a new connection carries the row.
      proxy.resume();
      expect(await store.insertBatch([coordOpRow(2)])).toBe(1);
    } finally {
      await store.close().catch(() => undefined);
      await proxy.cut();
      await withClient((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
    }
  });

  it('a database that goes away mid-run is UnavailableError (retryable), never a row error', async () => {
    const { UnavailableError } = await import('@coordbus/envelope');
    const { ArchiveRowError } = await import('../src/store/archive-store');
    const { coordOpRow } = await import('./store-conformance');
    const proxy = await new PgProxy().start();
    const port = proxy.port;
    const schema = `archivist_test_${newUlid().toLowerCase()}`;
    const store = new PostgresArchiveStore({ url: proxy.url, schema });
    try {
      await store.open();
      expect(await store.insertBatch([coordOpRow(1)])).toBe(1);
      await proxy.cut();
      const err = await store.insertBatch([coordOpRow(2)]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnavailableError);
      expect(err).not.toBeInstanceOf(ArchiveRowError);
      expect((err as InstanceType<typeof UnavailableError>).retryable).toBe(true);
      expect((err as Error).message).toContain(`127.0.0.1:${port}`);
      expect((err as Error).message).not.toContain('password');
    } finally {
      await store.close().catch(() => undefined);
      await proxy.cut();
      await withClient((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
    }
  });
});
