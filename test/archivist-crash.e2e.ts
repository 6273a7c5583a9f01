import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { GROUPS, Keyspace, Schemas } from '@coordbus/envelope';
import { TestRedisServer, cleanupNamespace, testKeyspace, testRedisUrl, waitFor } from '@coordbus/testing';
import {
  Archivist,
  codec,
  coordOp,
  countEvents,
  removeDir,
  startArchivist,
} from '../apps/telemetry-archivist/test/harness';

jest.setTimeout(90_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** XADDs `total` coord ops in pipelined chunks at a steady pace; resolves to the ids Redis confirmed. */
async function produce(
  redis: Redis,
  keyspace: Keyspace,
  total: number,
  chunk: number,
  pauseMs: number,
  stop?: () => boolean,
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < total && !stop?.(); i += chunk) {
    const p = redis.pipeline();
    for (let k = i; k < Math.min(total, i + chunk); k++)
      p.xadd(
        keyspace.coordIngest,
        '*',
        ...codec.encode(Schemas.coordOp, coordOp(k, { session: `s${k % 7}` })),
      );
    const res = (await p.exec()) ?? [];
    for (const [err, id] of res) if (!err) ids.push(id as string);
    await sleep(pauseMs);
  }
  return ids;
}

function archiveCounts(
  dataDir: string,
  stream: string,
): { rows: number; distinctIds: number; distinctMsgs: number } {
  const db = new Database(join(dataDir, 'archive.sqlite'), { readonly: true });
  try {
    return db
      .prepare(
        "SELECT COUNT(*) AS rows, COUNT(DISTINCT entry_id) AS distinctIds, COUNT(DISTINCT json_extract(data, '$.msg')) AS distinctMsgs FROM events WHERE stream = ?",
      )
      .get(stream) as { rows: number; distinctIds: number; distinctMsgs: number };
  } finally {
    db.close();
  }
}

describe('telemetry-archivist under SIGKILL (built service)', () => {
  const keyspace = testKeyspace('arch-kill');
  const redis = new Redis(testRedisUrl());
  const dataDir = mkdtempSync(join(tmpdir(), 'archivist-kill-'));
  let archivist: Archivist | undefined;

  afterAll(async () => {
    await archivist?.stop('SIGKILL');
    removeDir(dataDir);
    await cleanupNamespace(redis, keyspace);
    redis.disconnect();
  });

  it('archives exactly 20 000 rows, none doubled, across SIGKILLs at random points', async () => {
    const TOTAL = 20_000;
    const env = { ARCHIVIST_BATCH_SIZE: '200', ARCHIVIST_RECLAIM_IDLE_MS: '1000' };
    archivist = await startArchivist(keyspace, testRedisUrl(), env, dataDir);
    const t0 = Date.now();
    // ~5 000 entries/s for ~4 s; the archivist is killed and restarted while it works through them.
    const producing = produce(redis, keyspace, TOTAL, 500, 100);
    let kills = 0;
    let killedWhileBehind = 0;
    for (; kills < 3; kills++) {
      await sleep(300 + Math.random() * 1200);
      const xinfo = (await redis.xinfo('GROUPS', keyspace.coordIngest)) as unknown[][];
      const pending = Number(
        xinfo
          .map((g) =>
            Object.fromEntries(Array.from({ length: g.length / 2 }, (_, i) => [g[2 * i], g[2 * i + 1]])),
          )
          .find((g) => g.name === GROUPS.archivist)?.pending ?? 0,
      );
      if (pending > 0) killedWhileBehind++;
      await archivist.stop('SIGKILL');
      archivist = await startArchivist(keyspace, testRedisUrl(), env, dataDir);
    }
    const ids = await producing;
    const tKills = Date.now();
    expect(ids).toHaveLength(TOTAL);
    expect(kills).toBe(3);
    const a = archivist;
    let last = 0;
    await waitFor(
      async () => (last = await countEvents(a, 'stream=coordIngest')) >= TOTAL,
      `${TOTAL} archived rows (last ${last})`,
      45_000,
      250,
    );
    // Every delivery is acked: nothing left pending in the archivist's group.
    await waitFor(
      async () => ((await redis.xpending(keyspace.coordIngest, GROUPS.archivist)) as [number])[0] === 0,
      'no pending entries',
      10_000,
    );
    await archivist.stop();
    archivist = undefined;
    const counts = archiveCounts(dataDir, keyspace.coordIngest);
    expect(counts).toEqual({ rows: TOTAL, distinctIds: TOTAL, distinctMsgs: TOTAL });
    // Shown in the test output so a run that never killed mid-batch is visible.
    console.info(
      `archivist SIGKILL test: ${kills} kills (${killedWhileBehind} with entries pending) in ${tKills - t0} ms, all archived ${Date.now() - tKills} ms later`,
    );
  });
});

describe('telemetry-archivist across a Redis restart (built service, AOF)', () => {
  const keyspace = testKeyspace('arch-redis');
  const server = new TestRedisServer({ appendonly: true });
  let redis: Redis;
  let archivist: Archivist | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'archivist-redis-'));

  beforeAll(async () => {
    await server.start();
    redis = new Redis(server.url, { maxRetriesPerRequest: null });
  });

  afterAll(async () => {
    await archivist?.stop('SIGKILL');
    removeDir(dataDir);
    redis.disconnect();
    await server.dispose();
  });

  it('loses nothing acked: every confirmed entry ends up archived once', async () => {
    archivist = await startArchivist(
      keyspace,
      server.url,
      { ARCHIVIST_BATCH_SIZE: '100', ARCHIVIST_RECLAIM_IDLE_MS: '1000' },
      dataDir,
    );
    const producing = produce(redis, keyspace, 6000, 100, 50);
    await waitFor(
      async () => (await countEvents(archivist!, 'stream=coordIngest')) > 500,
      'the archivist to be mid-run',
      20_000,
      50,
    );
    await server.restart('SIGTERM', 1000);
    const ids = await producing;
    expect(ids.length).toBe(6000);
    // XADDs in flight when Redis stopped are re-sent by the client on reconnect: the stream may hold
    // a few entries twice (distinct ids), and the archive must hold exactly what the stream holds.
    const streamIds = (await redis.xrange(keyspace.coordIngest, '-', '+')).map(([id]) => id);
    let last = 0;
    await waitFor(
      async () => (last = await countEvents(archivist!, 'stream=coordIngest')) >= streamIds.length,
      `all ${streamIds.length} entries archived (last ${last})`,
      45_000,
      250,
    );
    await waitFor(
      async () => ((await redis.xpending(keyspace.coordIngest, GROUPS.archivist)) as [number])[0] === 0,
      'no pending entries',
      10_000,
    );
    await archivist.stop();
    archivist = undefined;
    expect(archiveCounts(dataDir, keyspace.coordIngest)).toMatchObject({
      rows: streamIds.length,
      distinctIds: streamIds.length,
      distinctMsgs: 6000,
    });
    const db = new Database(join(dataDir, 'archive.sqlite'), { readonly: true });
    const archived = new Set(
      (
        db.prepare('SELECT entry_id FROM events WHERE stream = ?').all(keyspace.coordIngest) as Array<{
          entry_id: string;
        }>
      ).map((r) => r.entry_id),
    );
    db.close();
    expect(streamIds.filter((id) => !archived.has(id))).toEqual([]);
    expect(ids.filter((id) => !archived.has(id))).toEqual([]);
  });
});
