#!/usr/bin/env node
'use strict';
// bench/fanout: envelopes/s from the coord ingest stream to pub/sub (logs.coord.<level>) plus the
// replay stream, with 1 and 2 fanout-publisher replicas as real processes; and end-to-end
// latency (XADD to ingest -> message on logs.coord.*) p50/p99 at a steady 1 000 envelopes/s.
// Same-run baseline: raw Redis for the same work (one XADD + one PUBLISH per envelope, pipelined,
// from one client), i.e. the ceiling of what any publisher could do on this Redis.
//
//   npm run build && node bench/fanout/run.js [--count 20000] [--seconds 5]
//
// Starts its own redis-server on a free port (REDIS_URL to use another).
const Redis = require('ioredis');
const {
  arg,
  deleteKeys,
  hrtime,
  procCpuMs,
  quantile,
  report,
  secondsSince,
  sleep,
  startRedis,
  startService,
  stopProcess,
} = require('../lib');

const COUNT = arg('count', 20000);
const SECONDS = arg('seconds', 5);

function envelope(session, i) {
  return {
    v: 0,
    ts: new Date().toISOString(),
    service: 'coord',
    host: 'bench',
    level: i % 50 === 0 ? 'error' : 'info',
    pid: process.pid,
    target: 'coord::heartbeat',
    msg: 'coord.heartbeat end',
    fields: {
      op: 'heartbeat',
      session,
      resource: '',
      peer: '',
      duration_ms: 1.5,
      phase: 'post',
      exit_code: i % 50 === 0 ? 1 : 0,
    },
  };
}
const fields = (e) => ['type', 'coord-op', 'v', '0', 'data', JSON.stringify(e)];

async function startReplica(env, name) {
  const { child } = await startService('fanout-publisher', {
    env: { ...env, COORDBUS_CONSUMER: name },
    ready: '"msg":"fanout-publisher started"',
  });
  return child;
}

async function run(url, ns, replicas, redisPid) {
  const redis = new Redis(url);
  const sub = new Redis(url);
  const ks = {
    ingest: `${ns}:coord:{ingest}`,
    pattern: `${ns}:logs.coord.*`,
    replay: `${ns}:logs:stream:coord`,
  };
  const env = { REDIS_URL: url, COORDBUS_NAMESPACE: ns };
  const children = await Promise.all(
    Array.from({ length: replicas }, (_, i) => startReplica(env, `bench-${replicas}-${i}`)),
  );
  let received = 0;
  const sentAt = new Map();
  const latencies = [];
  sub.on('pmessage', (_p, _c, m) => {
    received++;
    const s = JSON.parse(m).fields.session;
    const t0 = sentAt.get(s);
    if (t0 !== undefined) {
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      sentAt.delete(s);
    }
  });
  await sub.psubscribe(ks.pattern);

  // Throughput: COUNT envelopes written as fast as one pipelined client can, until all are fanned out.
  // CPU per envelope (Linux /proc) holds on a loaded machine where the wall rate does not.
  const cpu = () => ({
    publisher: children.reduce((sum, c) => sum + procCpuMs(c.pid), 0),
    redis: redisPid ? procCpuMs(redisPid) : NaN,
  });
  const cpu0 = cpu();
  const t0 = hrtime();
  for (let i = 0; i < COUNT; i += 500) {
    const p = redis.pipeline();
    for (let j = i; j < Math.min(COUNT, i + 500); j++)
      p.xadd(ks.ingest, '*', ...fields(envelope(`t-${j}`, j)));
    await p.exec();
  }
  const deadline = Date.now() + 120_000;
  while (received < COUNT && Date.now() < deadline) await sleep(10);
  const secs = secondsSince(t0);
  const rate = received / secs;
  const cpu1 = cpu();
  const usPerEnv = (k) => ((cpu1[k] - cpu0[k]) * 1000) / Math.max(1, received);
  const publisherUs = usPerEnv('publisher');
  const redisUs = usPerEnv('redis');
  const replayLen = await redis.xlen(ks.replay);

  // Latency at a steady 1 000/s: 10 envelopes every 10 ms for SECONDS.
  received = 0;
  const total = SECONDS * 1000;
  let sent = 0;
  const start = Date.now();
  while (sent < total) {
    const due = Math.min(total, Math.floor((Date.now() - start) * 1)); // 1 per ms
    if (due > sent) {
      const p = redis.pipeline();
      for (; sent < due; sent++) {
        const s = `l-${sent}`;
        sentAt.set(s, process.hrtime.bigint());
        p.xadd(ks.ingest, '*', ...fields(envelope(s, sent)));
      }
      await p.exec();
    }
    await sleep(5);
  }
  const ldeadline = Date.now() + 30_000;
  while (latencies.length < total && Date.now() < ldeadline) await sleep(10);
  await Promise.all(children.map((c) => stopProcess(c)));
  sub.disconnect();
  await deleteKeys(redis, `${ns}:*`);
  redis.disconnect();
  return {
    replicas,
    rate,
    publisherUs,
    redisUs,
    secs,
    received,
    replayLen,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    lost: total - latencies.length,
  };
}

async function baseline(url, ns, redisPid) {
  const redis = new Redis(url);
  const redis0 = redisPid ? procCpuMs(redisPid) : NaN;
  const t0 = hrtime();
  for (let i = 0; i < COUNT; i += 500) {
    const p = redis.pipeline();
    for (let j = i; j < Math.min(COUNT, i + 500); j++) {
      const e = envelope(`b-${j}`, j);
      p.xadd(`${ns}:base`, 'MAXLEN', '~', 10000, '*', ...fields(e));
      p.publish(`${ns}:logs.coord.${e.level}`, JSON.stringify(e));
    }
    await p.exec();
  }
  const rate = COUNT / secondsSince(t0);
  const redisUs = redisPid ? ((procCpuMs(redisPid) - redis0) * 1000) / COUNT : NaN;
  await redis.del(`${ns}:base`);
  redis.disconnect();
  return { rate, redisUs };
}

async function main() {
  const server = await startRedis();
  const { url } = server;
  const ns = `bench-fanout-${process.pid}`;
  try {
    console.log(
      `bench/fanout: ${COUNT} envelopes for throughput, ${SECONDS} s at 1 000/s for latency; ${require('node:os').cpus().length} CPUs, load ${require('node:os').loadavg()[0].toFixed(2)}`,
    );
    const { rate: base, redisUs: baseRedisUs } = await baseline(url, ns, server.pid);
    const rows = [];
    for (const replicas of [1, 2]) rows.push(await run(url, `${ns}-${replicas}`, replicas, server.pid));
    console.log(
      '\n| setup | envelopes/s (ingest -> pub/sub + replay) | latency p50 ms @1000/s | p99 ms | lost |',
    );
    console.log('|---|---|---|---|---|');
    console.log(
      `| baseline: raw XADD+PUBLISH, one pipelined client, no publisher | ${base.toFixed(0)} | - | - | - |`,
    );
    for (const r of rows) {
      console.log(
        `| fanout-publisher x${r.replicas} | ${r.rate.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.lost} |`,
      );
    }
    console.log(
      `\nCPU per envelope during the throughput phase (/proc; the fair figure on a loaded machine): redis-server ${baseRedisUs.toFixed(1)} µs for the baseline; ${rows
        .map(
          (r) =>
            `x${r.replicas}: publisher ${r.publisherUs.toFixed(1)} µs, redis-server ${r.redisUs.toFixed(1)} µs`,
        )
        .join('; ')}`,
    );
    console.log(
      `\nreplay stream length after ${COUNT} envelopes: ${rows.map((r) => r.replayLen).join(' / ')} (MAXLEN ~ 10000)`,
    );
    report({
      bench: 'fanout',
      name: 'fan-out, 1 replica',
      value: rows[0].rate,
      unit: 'envelopes/s',
      baseline: { name: 'raw XADD+PUBLISH pipelined', value: base },
      target: '>= 0.6',
    });
  } finally {
    server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
