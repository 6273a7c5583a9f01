#!/usr/bin/env node
'use strict';
/**
 * Sentinel benchmark (issue #4). Needs `npm run build` and `redis-server` on PATH.
 *
 *   node bench/sentinel/run.js [--events 20000] [--sessions 50] [--ttl 2]
 *
 * Prints:
 *  - events/s handled end to end (XADD'ed coord events -> observations written) with 1 and 2
 *    sentinel replicas (built processes, stream source), beside the same-run floor: a bare
 *    XREADGROUP + XACK loop doing no decoding and no observation writes;
 *  - cull latency: last heartbeat -> `session.dereg` (ttl-expired) event, against the TTL.
 * Everything runs on a private redis-server on a free port, so nothing else is disturbed.
 */
const { spawn } = require('node:child_process');
const { mkdtempSync, rmSync } = require('node:fs');
const { createServer } = require('node:net');
const { tmpdir } = require('node:os');
const { join } = require('node:path');

const root = join(__dirname, '..', '..');
const Redis = require(join(root, 'node_modules', 'ioredis')).default;
const env = require(join(root, 'dist', 'libs', 'envelope', 'src', 'index.js'));
const { CoordStore } = require(join(root, 'dist', 'libs', 'coord', 'src', 'index.js'));

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const EVENTS = opt('events', 20000);
const SESSIONS = opt('sessions', 50);
const TTL_S = opt('ttl', 2);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bench-sentinel-'));
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => undefined);
    const ok = await probe.connect().then(
      () => true,
      () => false,
    );
    probe.disconnect();
    if (ok) break;
    await sleep(50);
  }
  return { url, stop: () => (child.kill('SIGKILL'), rmSync(dir, { recursive: true, force: true })) };
}

function startSentinel(url, namespace, extra = {}) {
  const child = spawn(process.execPath, [join(root, 'dist', 'apps', 'sentinel-subscriber', 'main.js')], {
    env: {
      ...process.env,
      REDIS_URL: url,
      COORDBUS_NAMESPACE: namespace,
      HTTP_PORT: '0',
      HTTP_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      SENTINEL_BLOCK_MS: '100',
      ...extra,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr.on('data', (d) => process.stderr.write(d));
  // Started = its "sentinel-subscriber started" log line (the HTTP listener and the loop are up).
  child.started = new Promise((resolve) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      if (buf.includes('sentinel-subscriber started')) resolve();
    });
  });
  return child;
}

async function waitReady(redis, keyspace, procs) {
  await Promise.all(procs.map((p) => p.started));
  // ...and the consumer group exists (created by the first poll).
  for (;;) {
    try {
      const groups = await redis.xinfo('GROUPS', keyspace.coordEvents);
      if (groups.length) break;
    } catch {
      /* stream not there yet */
    }
    await sleep(50);
  }
  await sleep(300);
}

function makeEvent(i) {
  return {
    tx_id: env.newUlid(),
    tx_kind: 'dispatch.issue',
    ts: new Date().toISOString(),
    ingress_ts: null,
    source: 'bench',
    session_id: `s${i % 100}`,
    resource: null,
    payload: { order_id: `o${i}`, assignee: `s${i % 100}`, ticket: `T-${i}` },
  };
}

// Encoded (and validated) once, outside every timed window: the timings measure consumers, not the producer.
let ENCODED;
function encodedEvents() {
  if (!ENCODED) {
    const codec = new env.EnvelopeCodec();
    ENCODED = Array.from({ length: EVENTS }, (_, i) => codec.encode(env.Schemas.coordEvent, makeEvent(i)));
  }
  return ENCODED;
}

async function publish(redis, keyspace) {
  const all = encodedEvents();
  for (let off = 0; off < all.length; off += 1000) {
    const p = redis.pipeline();
    for (const fields of all.slice(off, off + 1000)) p.xadd(keyspace.coordEvents, '*', ...fields);
    await p.exec();
  }
}

async function throughput(url, replicas) {
  const keyspace = new env.Keyspace(`bench-tp-${replicas}-${Date.now()}`);
  const redis = new Redis(url);
  const procs = Array.from({ length: replicas }, (_, i) =>
    startSentinel(url, keyspace.namespace, { SENTINEL_CULL: '0', COORDBUS_CONSUMER: `r${i}` }),
  );
  await waitReady(redis, keyspace, procs);
  const t0 = process.hrtime.bigint();
  await publish(redis, keyspace);
  while ((await redis.xlen(keyspace.sentinelObservations)) < EVENTS) await sleep(20);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  procs.forEach((p) => p.kill('SIGKILL'));
  redis.disconnect();
  return EVENTS / secs;
}

async function floor(url) {
  // Same-run baseline: the cheapest possible consumer of the same stream (no decode, no writes).
  const keyspace = new env.Keyspace(`bench-floor-${Date.now()}`);
  const redis = new Redis(url);
  const reader = new Redis(url);
  await redis.xgroup('CREATE', keyspace.coordEvents, 'floor', '0', 'MKSTREAM');
  const t0 = process.hrtime.bigint();
  const pub = publish(redis, keyspace);
  let done = 0;
  while (done < EVENTS) {
    const res = await reader.xreadgroup(
      'GROUP',
      'floor',
      'c',
      'COUNT',
      256,
      'BLOCK',
      100,
      'STREAMS',
      keyspace.coordEvents,
      '>',
    );
    const entries = res ? res[0][1] : [];
    if (entries.length) await reader.xack(keyspace.coordEvents, 'floor', ...entries.map((e) => e[0]));
    done += entries.length;
  }
  await pub;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  redis.disconnect();
  reader.disconnect();
  return EVENTS / secs;
}

async function cullLatency(url) {
  const keyspace = new env.Keyspace(`bench-cull-${Date.now()}`);
  const redis = new Redis(url);
  const procs = [0, 1].map((i) =>
    startSentinel(url, keyspace.namespace, { COORD_SESSION_TTL: String(TTL_S), COORDBUS_CONSUMER: `c${i}` }),
  );
  await waitReady(redis, keyspace, procs);
  const store = new CoordStore(redis, { keyspace, sessionTtlMs: TTL_S * 1000 });
  const lastBeat = new Map();
  for (let i = 0; i < SESSIONS; i++) {
    const r = await store.register({ sessionId: `sess-${i}`, host: 'bench', pid: i });
    lastBeat.set(`sess-${i}`, Date.parse(r.session.last_heartbeat));
  }
  const codec = new env.EnvelopeCodec();
  const latencies = [];
  const deadline = Date.now() + TTL_S * 1000 * 5 + 30_000;
  while (latencies.length < SESSIONS && Date.now() < deadline) {
    latencies.length = 0;
    for (const [id, fields] of await redis.xrange(keyspace.coordEvents, '-', '+')) {
      const e = codec.decode(env.Schemas.coordEvent, fields);
      if (e.tx_kind === 'session.dereg')
        latencies.push(Number(id.split('-')[0]) - lastBeat.get(e.session_id));
    }
    await sleep(100);
  }
  procs.forEach((p) => p.kill('SIGKILL'));
  redis.disconnect();
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  return { n: latencies.length, p50: q(0.5), p99: q(0.99), max: latencies[latencies.length - 1] };
}

(async () => {
  encodedEvents();
  const redis = await startRedis();
  try {
    const base = await floor(redis.url);
    const one = await throughput(redis.url, 1);
    const two = await throughput(redis.url, 2);
    const cull = await cullLatency(redis.url);
    const ttlMs = TTL_S * 1000;
    console.log(`sentinel benchmark (${EVENTS} events, node ${process.version})`);
    console.log(`  baseline: bare XREADGROUP+XACK loop          ${base.toFixed(0).padStart(8)} events/s`);
    console.log(`  sentinel, 1 replica (decode+dedup+observe)   ${one.toFixed(0).padStart(8)} events/s`);
    console.log(
      `  sentinel, 2 replicas                         ${two.toFixed(0).padStart(8)} events/s  (x${(two / one).toFixed(2)})`,
    );
    console.log(
      `cull latency, last heartbeat -> session.dereg event, TTL ${ttlMs} ms, ${cull.n}/${SESSIONS} sessions, 2 replicas, cull interval ${Math.max(250, ttlMs / 10)} ms:`,
    );
    console.log(
      `  p50 ${cull.p50} ms (TTL + ${cull.p50 - ttlMs} ms)   p99 ${cull.p99} ms (TTL + ${cull.p99 - ttlMs} ms)   max ${cull.max} ms`,
    );
  } finally {
    redis.stop();
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
