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
 * `--quick` runs the baseline and one replica only (for profiling: BENCH_CPU_PROF_DIR=<dir>).
 */
const Redis = require('ioredis').default;
const {
  arg,
  dist,
  hasFlag,
  hrtime,
  procCpuMs,
  quantile,
  report,
  requireBuilt,
  secondsSince,
  sleep,
  startRedis,
  startService,
  stopProcess,
} = require('../lib');

requireBuilt('apps/sentinel-subscriber/main.js');
const env = require(dist('libs/envelope/src/index.js'));
const { CoordStore } = require(dist('libs/coord/src/index.js'));

const EVENTS = arg('events', 20000);
const SESSIONS = arg('sessions', 50);
const TTL_S = arg('ttl', 2);

/** Starts the sentinel replicas at once; resolves with their processes once each is started. */
async function startSentinels(url, namespace, extras) {
  const started = await Promise.all(
    extras.map((extra) =>
      startService('sentinel-subscriber', {
        env: { REDIS_URL: url, COORDBUS_NAMESPACE: namespace, SENTINEL_BLOCK_MS: '100', ...extra },
        // Started = its "sentinel-subscriber started" log line (the HTTP listener and the loop are up).
        ready: 'sentinel-subscriber started',
      }),
    ),
  );
  return started.map((s) => s.child);
}

async function waitReady(redis, keyspace) {
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

/** Events/s with `replicas` sentinels, and CPU per event (/proc) of the sentinels and of redis-server. */
async function throughput(url, replicas, redisPid) {
  const keyspace = new env.Keyspace(`bench-tp-${replicas}-${Date.now()}`);
  const redis = new Redis(url);
  const procs = await startSentinels(
    url,
    keyspace.namespace,
    Array.from({ length: replicas }, (_, i) => ({ SENTINEL_CULL: '0', COORDBUS_CONSUMER: `r${i}` })),
  );
  await waitReady(redis, keyspace);
  const cpu = () => procs.reduce((a, p) => a + procCpuMs(p.pid), 0);
  const cpu0 = cpu();
  const redisCpu0 = redisPid ? procCpuMs(redisPid) : 0;
  const t0 = hrtime();
  await publish(redis, keyspace);
  while ((await redis.xlen(keyspace.sentinelObservations)) < EVENTS) await sleep(20);
  const secs = secondsSince(t0);
  const usPerEvent = ((cpu() - cpu0) * 1000) / EVENTS;
  const redisUsPerEvent = redisPid ? ((procCpuMs(redisPid) - redisCpu0) * 1000) / EVENTS : NaN;
  // SIGTERM, not SIGKILL: a sentinel started with --cpu-prof writes its profile on a clean exit.
  await Promise.all(procs.map((p) => stopProcess(p)));
  redis.disconnect();
  return { rate: EVENTS / secs, usPerEvent, redisUsPerEvent };
}

async function floor(url) {
  // Same-run baseline: the cheapest possible consumer of the same stream (no decode, no writes).
  const keyspace = new env.Keyspace(`bench-floor-${Date.now()}`);
  const redis = new Redis(url);
  const reader = new Redis(url);
  await redis.xgroup('CREATE', keyspace.coordEvents, 'floor', '0', 'MKSTREAM');
  const t0 = hrtime();
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
  const secs = secondsSince(t0);
  redis.disconnect();
  reader.disconnect();
  return EVENTS / secs;
}

async function cullLatency(url) {
  const keyspace = new env.Keyspace(`bench-cull-${Date.now()}`);
  const redis = new Redis(url);
  const procs = await startSentinels(
    url,
    keyspace.namespace,
    [0, 1].map((i) => ({ COORD_SESSION_TTL: String(TTL_S), COORDBUS_CONSUMER: `c${i}` })),
  );
  await waitReady(redis, keyspace);
  // The sentinels seed the stored session TTL from COORD_SESSION_TTL.
  const store = new CoordStore(redis, { keyspace });
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
  return {
    n: latencies.length,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    max: quantile(latencies, 1),
  };
}

(async () => {
  encodedEvents();
  const redis = await startRedis({ useEnv: false });
  try {
    const quick = hasFlag('quick');
    const base = await floor(redis.url);
    const one = await throughput(redis.url, 1, redis.pid);
    const two = quick ? null : await throughput(redis.url, 2, redis.pid);
    const cpu = (r) =>
      `CPU/event: sentinel ${r.usPerEvent.toFixed(1)} us, redis-server ${r.redisUsPerEvent.toFixed(1)} us`;
    console.log(`sentinel benchmark (${EVENTS} events, node ${process.version})`);
    console.log(`  baseline: bare XREADGROUP+XACK loop          ${base.toFixed(0).padStart(8)} events/s`);
    console.log(
      `  sentinel, 1 replica (decode+dedup+observe)   ${one.rate.toFixed(0).padStart(8)} events/s  ${cpu(one)}`,
    );
    if (two) {
      console.log(
        `  sentinel, 2 replicas                         ${two.rate.toFixed(0).padStart(8)} events/s  (x${(two.rate / one.rate).toFixed(2)})  ${cpu(two)}`,
      );
    }
    if (!quick) {
      const cull = await cullLatency(redis.url);
      const ttlMs = TTL_S * 1000;
      console.log(
        `cull latency, last heartbeat -> session.dereg event, TTL ${ttlMs} ms, ${cull.n}/${SESSIONS} sessions, 2 replicas, cull interval ${Math.max(250, ttlMs / 10)} ms:`,
      );
      console.log(
        `  p50 ${cull.p50} ms (TTL + ${cull.p50 - ttlMs} ms)   p99 ${cull.p99} ms (TTL + ${cull.p99 - ttlMs} ms)   max ${cull.max} ms`,
      );
    }
    report({
      bench: 'sentinel',
      name: 'sentinel, 1 replica',
      value: one.rate,
      unit: 'events/s',
      baseline: { name: 'bare XREADGROUP+XACK loop', value: base },
      target: '>= 0.4',
      note: cpu(one),
    });
  } finally {
    redis.stop();
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
