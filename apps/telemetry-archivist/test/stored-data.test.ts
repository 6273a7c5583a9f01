import Redis from 'ioredis';
import { Keyspace, Schemas } from '@coordbus/envelope';
import { cleanupNamespace, testKeyspace, testRedisUrl } from '@coordbus/testing';
import { Archivist, coordOp, removeDir, startArchivist, waitForCount, xadd } from './harness';

jest.setTimeout(60_000);

type EventsBody = { events: Array<{ session: string; data: Record<string, unknown> }> };

/**
 * What the archive keeps of an entry is the validated DTO: the producer's own text when it says
 * exactly that (the fast path keeps it as is), and never a key the schema drops.
 */
describe('telemetry-archivist stored data (built service, SQLite)', () => {
  let keyspace: Keyspace;
  let redis: Redis;
  let archivist: Archivist | undefined;

  beforeAll(() => {
    keyspace = testKeyspace('arch-data');
    redis = new Redis(testRedisUrl());
  });

  afterAll(async () => {
    await archivist?.stop();
    if (archivist) removeDir(archivist.dataDir);
    await cleanupNamespace(redis, keyspace);
    redis.disconnect();
  });

  it('stores what a producer wrote, and drops keys the schema does not know wherever they are', async () => {
    const plain = coordOp(1, { session: 'plain' });
    await xadd(redis, keyspace.coordIngest, Schemas.coordOp, plain);
    // The same op with unknown keys, in the producers' key order and in another one.
    const extra = coordOp(2, { session: 'extra' });
    const withKeys = { ...extra, token: 's3cret', fields: { ...extra.fields, password: 'hunter2' } };
    const { fields, ...top } = extra;
    const reordered = { x: 1, fields: { api_key: 'k', ...fields, session: 'reordered' }, ...top };
    for (const value of [withKeys, reordered]) {
      await redis.xadd(
        keyspace.coordIngest,
        '*',
        'type',
        'coord-op',
        'v',
        '0',
        'data',
        JSON.stringify(value),
      );
    }
    archivist = await startArchivist(keyspace, testRedisUrl());
    await waitForCount(archivist, 'stream=coordIngest', 3);

    const { body } = await archivist.get<EventsBody>('/v1/events?stream=coordIngest&limit=10');
    const bySession = new Map(body.events.map((e) => [e.session, e.data]));
    expect(bySession.get('plain')).toEqual(JSON.parse(JSON.stringify(plain)));
    expect(bySession.get('extra')).toEqual(JSON.parse(JSON.stringify(extra)));
    const stored = JSON.stringify(body.events.map((e) => e.data));
    for (const secret of ['token', 's3cret', 'password', 'hunter2', 'api_key', '"x"']) {
      expect(stored).not.toContain(secret);
    }
    expect(bySession.get('reordered')).toMatchObject({ fields: { session: 'reordered' } });
  });
});
