import Redis from 'ioredis';
import { Client } from 'pg';
import { Keyspace, Schemas, newUlid } from '@coordbus/envelope';
import { cleanupNamespace, testKeyspace, testRedisUrl, waitFor } from '@coordbus/testing';
import { pgConnectionConfig } from '../src/store/postgres-archive-store';
import {
  Archivist,
  PG_URL,
  PgProxy,
  codec,
  coordOp,
  removeDir,
  startArchivist,
  waitForCount,
  xadd,
} from './harness';

jest.setTimeout(90_000);

type EventsBody = { events: Array<{ id: string; session: string | null; data: Record<string, unknown> }> };

/**
 * One bad entry never takes its batch down, with either store: the entries around it are archived,
 * only it is dead-lettered (with the store's reason), and values one store cannot hold natively
 * (NUL, lone surrogates, over-long keys) are archived normalised, not refused.
 */
describe.each([
  ['SQLite', false],
  ['PostgreSQL', true],
])('archivist batches with bad entries (%s)', (_name, postgres) => {
  let keyspace: Keyspace;
  let redis: Redis;
  let archivist: Archivist | undefined;
  const schema = `archivist_test_${newUlid().toLowerCase()}`;

  beforeEach(() => {
    keyspace = testKeyspace('arch-poison');
    redis = new Redis(testRedisUrl());
  });
  afterEach(async () => {
    if (archivist) {
      await archivist.stop('SIGTERM');
      removeDir(archivist.dataDir);
      archivist = undefined;
    }
    await cleanupNamespace(redis, keyspace);
    redis.disconnect();
    if (postgres) {
      const c = new Client(pgConnectionConfig(PG_URL));
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
    }
  });

  const start = async () =>
    (archivist = await startArchivist(
      keyspace,
      testRedisUrl(),
      postgres ? { DATABASE_URL: PG_URL, ARCHIVIST_PG_SCHEMA: schema } : {},
    ));

  it('archives every good entry of the batch and dead-letters only the one no store can hold', async () => {
    // All written before the archivist starts, so they arrive as one batch.
    for (let i = 1; i <= 5; i++) await xadd(redis, keyspace.coordIngest, Schemas.coordOp, coordOp(i));
    const nul = await xadd(
      redis,
      keyspace.coordIngest,
      Schemas.coordOp,
      coordOp(6, { session: 'nul\u0000here' }),
    );
    const surrogate = await xadd(
      redis,
      keyspace.coordIngest,
      Schemas.coordOp,
      coordOp(7, { session: 'lone\ud800' }),
    );
    const long = await xadd(
      redis,
      keyspace.coordIngest,
      Schemas.coordOp,
      coordOp(8, { session: 'L'.repeat(4000) }),
    );
    for (let i = 9; i <= 10; i++) await xadd(redis, keyspace.coordIngest, Schemas.coordOp, coordOp(i));
    // An entry id beyond 2^53: no store keeps it exactly (the last id: later ones must be larger).
    const huge = '9007199254740993-0';
    await redis.xadd(keyspace.coordIngest, huge, ...codec.encode(Schemas.coordOp, coordOp(11)));
    await start();

    await waitForCount(archivist!, 'stream=coordIngest', 10);
    await waitForCount(archivist!, 'stream=coordIngest:dead', 1);
    const dead = await redis.xrange(keyspace.deadLetter(keyspace.coordIngest), '-', '+');
    expect(dead).toHaveLength(1);
    const letter = codec.decode(Schemas.deadLetter, dead[0][1]);
    expect(letter).toMatchObject({ entry_id: huge, error_code: 'Invalid', delivery_count: 1 });
    expect(letter.reason).toContain('the archive cannot store this entry');
    expect(letter.reason).toContain('beyond what the archive stores exactly');

    const { body } = await archivist!.get<EventsBody>('/v1/events?stream=coordIngest&limit=100');
    const byId = new Map(body.events.map((e) => [e.id, e]));
    expect(byId.get(nul)!.session).toBe('nul\uFFFDhere');
    expect(byId.get(surrogate)!.session).toBe('lone\uFFFD');
    expect(byId.get(long)!.session).toMatch(/^L+…sha256:[0-9a-f]{16}$/);
    expect((byId.get(nul)!.data.fields as { session: string }).session).toBe('nul\u0000here');
    // Everything acked: nothing left pending for a redelivery.
    await waitFor(
      async () => Number((await redis.xpending(keyspace.coordIngest, 'archivist'))[0]) === 0,
      'no pending entries',
    );
  });

  if (postgres) {
    it('a database outage is waited out: nothing dead-lettered, every entry archived once it is back', async () => {
      const proxy = await new PgProxy().start();
      try {
        archivist = await startArchivist(keyspace, testRedisUrl(), {
          DATABASE_URL: proxy.url,
          ARCHIVIST_PG_SCHEMA: schema,
          // Small, so counting outage failures as deliveries would dead-letter within the test.
          STREAM_MAX_DELIVERIES: '2',
        });
        for (let i = 1; i <= 3; i++) await xadd(redis, keyspace.coordIngest, Schemas.coordOp, coordOp(i));
        await waitForCount(archivist, 'stream=coordIngest', 3);
        await proxy.cut();
        for (let i = 4; i <= 12; i++) await xadd(redis, keyspace.coordIngest, Schemas.coordOp, coordOp(i));
        await waitFor(
          async () => (await fetch(`${archivist!.url}/readyz`)).status === 503,
          '/readyz to report the outage',
          15_000,
        );
        await new Promise((r) => setTimeout(r, 4000)); // many retries' worth
        expect(await redis.xlen(keyspace.deadLetter(keyspace.coordIngest))).toBe(0);
        await proxy.start(); // the same port: the database is back
        await waitForCount(archivist, 'stream=coordIngest', 12, 30_000);
        await waitFor(
          async () => (await fetch(`${archivist!.url}/readyz`)).status === 200,
          '/readyz 200 again',
          15_000,
        );
        expect(await redis.xlen(keyspace.deadLetter(keyspace.coordIngest))).toBe(0);
      } finally {
        await proxy.cut();
      }
    });
  }
});
