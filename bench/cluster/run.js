#!/usr/bin/env node
'use strict';
/**
 * Redis Cluster benchmark: what cluster mode costs against the same-run single-node baseline.
 * Starts its own redis-server (baseline) and a 3-master cluster (same settings, no persistence).
 *
 *   npm run build && node bench/cluster/run.js [--coord 60] [--ops 3000] [--entries 20000]
 *
 * 1. `coord heartbeat --ensure` as real processes (bin/coord, the hook hot path), sequential:
 *    p50/p95 wall time per process. Cluster runs seeded on a node owning neither the {coord} nor
 *    the {ingest} slot (each process follows two MOVED redirects: the worst case) and on the
 *    {coord} owner (one redirect, for the envelopes' {ingest} slot).
 * 2. CoordStore.heartbeat in one process, sequential: ops/s with the coord RespClient /
 *    ClusterRespClient and with ioredis Redis / Cluster (steady state: slots already learned).
 * 3. Transport drain: entries written first, then one RedisStreamsServer (batch 100, no-op
 *    handler) consumes and acks them all; entries/s.
 */
require('reflect-metadata');
const { spawn } = require('node:child_process');
const path = require('node:path');
const { arg, dist, pct, requireBuilt, waitFor } = require('../lib');

requireBuilt('libs/testing/src/index.js', 'libs/coord/src/index.js', 'libs/redis-streams/src/index.js');
const Redis = require('ioredis').default;
const { TestRedisCluster, TestRedisServer } = require(dist('libs/testing/src/index.js'));
const { ClusterRespClient, CoordStore, RespClient, keySlot } = require(dist('libs/coord/src/index.js'));
const { openRedis, RedisStreamsServer } = require(dist('libs/redis-streams/src/index.js'));
const { Keyspace } = require(dist('libs/envelope/src/index.js'));

const COORD_RUNS = arg('coord', 60);
const OPS = arg('ops', 3000);
const ENTRIES = arg('entries', 20000);
const COORD_BIN = path.resolve(__dirname, '..', '..', 'bin', 'coord');
const quiet = { log() {}, warn() {}, error() {} };

function runCoord(env) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(COORD_BIN, ['heartbeat', '--ensure'], {
      env: { ...process.env, ...env },
      stdio: 'ignore',
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`coord exited ${code}`));
      else resolve(Number(process.hrtime.bigint() - t0) / 1e6);
    });
  });
}

async function coordCli(label, url, cluster) {
  const env = {
    REDIS_URL: url,
    REDIS_CLUSTER: cluster ? '1' : '0',
    COORDBUS_NAMESPACE: `bench-cl-${label}`,
    COORD_SESSION_ID: 'bench',
  };
  await runCoord(env); // registers the session; warms the page cache
  const times = [];
  for (let i = 0; i < COORD_RUNS; i++) times.push(await runCoord(env));
  return { label, p50: pct(times, 50), p95: pct(times, 95) };
}

async function storeOps(label, conn) {
  const store = new CoordStore(conn, { keyspace: new Keyspace(`bench-cl-store-${label}`) });
  await store.register({ sessionId: 's', host: 'h', pid: 1 });
  for (let i = 0; i < 100; i++) await store.heartbeat('s');
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < OPS; i++) await store.heartbeat('s');
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return { label, opsPerS: Math.round(OPS / s), usPerOp: Math.round((s / OPS) * 1e6) };
}

async function drain(label, url, cluster) {
  const keyspace = new Keyspace(`bench-cl-drain-${label}`);
  const producer = openRedis(url, { cluster });
  const stream = keyspace.telemetryEvents;
  for (let i = 0; i < ENTRIES; i += 1000) {
    const p = producer.pipeline();
    for (let j = i; j < Math.min(ENTRIES, i + 1000); j++)
      p.xadd(stream, '*', 'type', 'x', 'v', '1', 'data', `{"i":${j}}`);
    await p.exec();
  }
  let handled = 0;
  const server = new RedisStreamsServer({
    url,
    cluster,
    keyspace,
    consumer: 'bench',
    batchSize: 100,
    logger: quiet,
  });
  server.addStreamHandler({ stream: 'telemetryEvents', group: 'bench' }, async () => {
    handled++;
  });
  const t0 = process.hrtime.bigint();
  await new Promise((resolve, reject) => server.listen((e) => (e ? reject(e) : resolve())));
  await waitFor(async () => handled >= ENTRIES, 'drain', 120_000, 5);
  await waitFor(
    async () => {
      const g = await producer.xinfo('GROUPS', stream);
      return Number(g[0][g[0].indexOf('pending') + 1]) === 0;
    },
    'acks',
    30_000,
    5,
  );
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  await server.close();
  producer.disconnect();
  return { label, entriesPerS: Math.round(ENTRIES / s) };
}

async function main() {
  const single = await new TestRedisServer().start();
  const cluster = await new TestRedisCluster(3).start();
  try {
    const probe = new Redis(cluster.urls[0]);
    const ranges = await probe.cluster('SLOTS');
    probe.disconnect();
    const owner = (slot) => String(ranges.find(([lo, hi]) => slot >= lo && slot <= hi)[2][1]);
    const coordOwner = owner(keySlot('{coord}'));
    const busy = new Set([coordOwner, owner(keySlot('{ingest}'))]);
    const worstSeed = cluster.nodes.find((n) => !busy.has(String(n.port))).url;
    const ownerSeed = cluster.nodes.find((n) => String(n.port) === coordOwner).url;

    console.log(`\n1. bin/coord heartbeat --ensure, ${COORD_RUNS} sequential processes (ms per process)`);
    const cli = [
      await coordCli('single', single.url, false),
      await coordCli('cluster-worst', worstSeed, true),
      await coordCli('cluster-owner', ownerSeed, true),
    ];
    for (const r of cli)
      console.log(`   ${r.label.padEnd(28)} p50 ${r.p50.toFixed(1)}  p95 ${r.p95.toFixed(1)}`);

    console.log(`\n2. CoordStore.heartbeat in-process, ${OPS} sequential (after warm-up)`);
    const conns = {
      'RespClient single': new RespClient(single.url),
      'ClusterRespClient cluster': new ClusterRespClient(worstSeed),
      'ioredis single': new Redis(single.url),
      'ioredis Cluster': openRedis(worstSeed, { cluster: true }),
    };
    for (const [label, conn] of Object.entries(conns)) {
      const r = await storeOps(label.replace(/\W+/g, '-'), conn);
      console.log(`   ${label.padEnd(28)} ${String(r.opsPerS).padStart(6)} ops/s  ${r.usPerOp} us/op`);
      conn.disconnect();
    }

    console.log(`\n3. transport drain, ${ENTRIES} entries, batch 100, one consumer`);
    for (const [label, url, isCluster] of [
      ['single', single.url, false],
      ['cluster', worstSeed, true],
    ]) {
      const r = await drain(label, url, isCluster);
      console.log(`   ${label.padEnd(28)} ${String(r.entriesPerS).padStart(6)} entries/s`);
    }
  } finally {
    await cluster.dispose();
    await single.dispose();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
