#!/usr/bin/env node
'use strict';
/**
 * Transport benchmark: messages/s end to end (XADD -> handler -> XACK) through ONE consumer with a
 * trivial handler, at read batch sizes 1, 10 and 100, beside the XADD ceiling measured in the same
 * run with `redis-benchmark` (pipelined, same entry fields).
 *
 *   npm run build && node bench/transport/run.js
 *
 * Two figures per configuration:
 *   live  - the producer (redis-benchmark, pipelined XADD) writes while the consumer runs; the
 *           clock runs from the first XADD to the last XACK.
 *   drain - the entries are written first; the clock runs from the consumer's start to the last
 *           XACK (the consumer's own throughput, nothing else competing for the CPU).
 * Plus the consumer process's CPU time per entry (drain), which does not depend on machine load.
 *
 * env: REDIS_URL (default redis://127.0.0.1:6379), BENCH_N (entries per run, default 100000; batch-1
 * runs use at most 20000), BENCH_ONLY (comma-separated run labels, e.g. `nest-b100,plain-b100`).
 * Uses its own namespace (bench-transport-<pid>-*) and deletes it afterwards.
 */
require('reflect-metadata');
const { spawn, spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');
const { deleteKeys, dist, hrtime, report, requireBuilt, secondsSince, sleep } = require('../lib');

requireBuilt('libs/redis-streams/src/index.js');
const Redis = require('ioredis').default;
const { Controller, Module } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const { Ctx, Payload } = require('@nestjs/microservices');
const { Registry } = require('prom-client');
const { RedisStreamsServer, StreamBatchHandler, StreamHandler } = require(
  dist('libs/redis-streams/src/index.js'),
);
const { EnvelopeCodec, Keyspace, Schemas } = require(dist('libs/envelope/src/index.js'));

const url = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const N = Number(process.env.BENCH_N || 100000);
const baseNs = `bench-transport-${process.pid}`;
const quiet = { log() {}, warn() {}, error() {} };

// A realistic entry: a coord op envelope as the codec writes it (type, v, data).
const sampleOp = {
  v: 0,
  ts: '2026-01-01T00:00:00.000Z',
  service: 'coord',
  host: 'bench',
  level: 'info',
  pid: 1234,
  target: 'coord::lock',
  msg: 'lock acquired',
  fields: {
    op: 'lock.acquire',
    session: 'sess-1',
    resource: 'repo/file.ts',
    peer: '',
    duration_ms: 3,
    phase: 'post',
    exit_code: 0,
  },
};
const FIELDS = new EnvelopeCodec().encode(Schemas.coordOp, sampleOp);

let handled = 0;
/** The trivial handler, declared the way services declare theirs (decorators applied by hand in plain JS). */
function benchModule(schema, batch) {
  class BenchController {
    handle(data, _ctx) {
      handled += batch ? data.entries.length : 1;
    }
  }
  const desc = Object.getOwnPropertyDescriptor(BenchController.prototype, 'handle');
  Payload()(BenchController.prototype, 'handle', 0);
  Ctx()(BenchController.prototype, 'handle', 1);
  Reflect.defineMetadata('design:paramtypes', [Object, Object], BenchController.prototype, 'handle');
  (batch ? StreamBatchHandler : StreamHandler)({ stream: 'coordIngest', group: 'bench', schema })(
    BenchController.prototype,
    'handle',
    desc,
  );
  Object.defineProperty(BenchController.prototype, 'handle', desc);
  Controller()(BenchController);
  class BenchModule {}
  Module({ controllers: [BenchController] })(BenchModule);
  return BenchModule;
}

function benchArgs(n) {
  const u = new URL(url);
  const args = ['-h', u.hostname, '-p', u.port || '6379', '-q', '-n', String(n), '-P', '64'];
  if (u.password) args.push('-a', decodeURIComponent(u.password), '--no-auth-warning');
  if (u.username) args.push('--user', decodeURIComponent(u.username));
  return args;
}

const hasRedisBenchmark = spawnSync('redis-benchmark', ['--version'], { stdio: 'ignore' }).status === 0;

/** Pipelined XADD of `n` copies of FIELDS to `stream`: redis-benchmark (C), else a Node pipeline. */
function produce(stream, n) {
  const child = hasRedisBenchmark
    ? spawn('redis-benchmark', [...benchArgs(n), '-c', '4', 'XADD', stream, '*', ...FIELDS], {
        stdio: 'ignore',
      })
    : spawn(
        process.execPath,
        [path.join(__dirname, 'producer.js'), url, stream, String(n), JSON.stringify(FIELDS)],
        {
          stdio: 'ignore',
        },
      );
  return new Promise((resolve, reject) =>
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`producer exited with ${code}`)),
    ),
  );
}

function xaddCeiling() {
  if (!hasRedisBenchmark) return { rate: null, note: 'redis-benchmark not on PATH: no ceiling' };
  const key = `${baseNs}:ceiling:{x}`;
  const run = spawnSync('redis-benchmark', [...benchArgs(200000), 'XADD', key, '*', ...FIELDS], {
    encoding: 'utf8',
  });
  const m = /([\d.]+) requests per second/.exec(run.stdout || '');
  return { rate: m ? Number(m[1]) : null, note: (run.stdout || run.stderr || '').trim().split('\n').pop() };
}

/** Deletes every key of a namespace (and of namespaces it prefixes: one per run). */
const cleanup = (redis, ns) => deleteKeys(redis, `${ns}*`);

async function startConsumer(keyspace, { batchSize, mode, schema, batch }) {
  const server = new RedisStreamsServer({
    url,
    keyspace,
    consumer: 'bench',
    batchSize,
    concurrency: 256,
    blockMs: 100,
    logger: quiet,
    registry: new Registry(),
  });
  if (mode === 'nest') {
    const app = await NestFactory.createMicroservice(benchModule(schema, batch), {
      strategy: server,
      logger: false,
    });
    await app.listen();
    return () => app.close();
  }
  server.addStreamHandler({ stream: 'coordIngest', group: 'bench', schema }, () => {
    handled++;
  });
  await new Promise((resolve, reject) => server.listen((err) => (err ? reject(err) : resolve())));
  return () => server.close();
}

async function allAcked(redis, stream, n) {
  while (handled < n) await sleep(2);
  for (;;) {
    const [pending] = await redis.xpending(stream, 'bench');
    if (Number(pending) === 0) return;
    await sleep(1);
  }
}

async function runOnce(redis, run, phase) {
  const n = run.batchSize === 1 ? Math.min(N, 20000) : N;
  const keyspace = new Keyspace(`${baseNs}-${run.label}-${phase}`);
  const stream = keyspace.coordIngest;
  handled = 0;
  let stop;
  let t0;
  let cpu0;
  if (phase === 'live') {
    stop = await startConsumer(keyspace, run);
    t0 = hrtime();
    cpu0 = process.cpuUsage();
    await Promise.all([produce(stream, n), allAcked(redis, stream, n)]);
  } else {
    await produce(stream, n);
    t0 = hrtime();
    cpu0 = process.cpuUsage();
    stop = await startConsumer(keyspace, run);
    await allAcked(redis, stream, n);
  }
  const seconds = secondsSince(t0);
  const cpu = process.cpuUsage(cpu0);
  await stop();
  await cleanup(redis, keyspace.namespace);
  return { n, rate: n / seconds, cpuUsPerMsg: (cpu.user + cpu.system) / n };
}

async function main() {
  const redis = new Redis(url);
  const info = await redis.info('server');
  const version = /redis_version:(\S+)/.exec(info)?.[1];
  const load = os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  console.log(`coordbus transport benchmark: redis ${version} at ${url}, node ${process.version}`);
  console.log(
    `machine: ${os.cpus().length} CPUs, load average ${load} at start (producer, consumer and Redis share them)`,
  );
  console.log(
    `entry: ${FIELDS.join(' ').length} bytes of fields (a coord op envelope); consumer concurrency 256\n`,
  );

  const ceiling = xaddCeiling();
  await cleanup(redis, baseNs);
  console.log(
    `XADD ceiling (redis-benchmark -n 200000 -P 64, same fields): ${ceiling.rate ? `${Math.round(ceiling.rate)} msgs/s` : ceiling.note}\n`,
  );

  const runs = [
    { label: 'nest-b1', batchSize: 1, mode: 'nest' },
    { label: 'nest-b10', batchSize: 10, mode: 'nest' },
    { label: 'nest-b100', batchSize: 100, mode: 'nest' },
    { label: 'nest-batchhandler-b100', batchSize: 100, mode: 'nest', batch: true },
    { label: 'plain-b100', batchSize: 100, mode: 'plain' },
    { label: 'nest-b100-schema', batchSize: 100, mode: 'nest', schema: 'coordOp' },
  ];
  const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',') : null;
  const pct = (rate) => (ceiling.rate ? ` ${((rate / ceiling.rate) * 100).toFixed(1).padStart(5)}%` : '');
  console.log(
    `${'consumer'.padEnd(26)}${'COUNT'.padStart(5)}  ${'live msgs/s'.padStart(12)}${ceiling.rate ? ' of ceil' : ''}` +
      `  ${'drain msgs/s'.padStart(12)}${ceiling.rate ? ' of ceil' : ''}  consumer CPU/msg   entries`,
  );
  const rows = [];
  for (const r of runs.filter((x) => !only || only.includes(x.label))) {
    const live = await runOnce(redis, r, 'live');
    const drain = await runOnce(redis, r, 'drain');
    rows.push({ ...r, live, drain });
    const name =
      (r.batch
        ? 'Nest @StreamBatchHandler'
        : r.mode === 'nest'
          ? 'Nest @StreamHandler'
          : 'plain addStreamHandler') + (r.schema ? ' +schema' : '');
    console.log(
      `${name.padEnd(26)}${String(r.batchSize).padStart(5)}  ${String(Math.round(live.rate)).padStart(12)}${pct(live.rate)}   ` +
        `${String(Math.round(drain.rate)).padStart(12)}${pct(drain.rate)}   ${drain.cpuUsPerMsg.toFixed(1).padStart(6)} us` +
        `   ${String(drain.n).padStart(7)}`,
    );
  }
  await cleanup(redis, baseNs);
  redis.disconnect();
  const best = rows.find((r) => r.label === 'nest-b100');
  if (best) {
    console.log(
      `\ntarget >= 50000 msgs/s through one consumer (Nest @StreamHandler, COUNT 100): live ${Math.round(best.live.rate)}, ` +
        `drain ${Math.round(best.drain.rate)} -> ${Math.max(best.live.rate, best.drain.rate) >= 50000 ? 'met' : 'NOT met'} on this run`,
    );
  }
  if (best) {
    report({
      bench: 'transport',
      name: 'transport, one Nest consumer, COUNT 100 (best of live/drain)',
      value: Math.max(best.live.rate, best.drain.rate),
      unit: 'msgs/s',
      target: '>= 50000',
    });
  }
  // What schema validation costs the consumer: drain (the consumer alone), same COUNT and handler.
  const validated = rows.find((r) => r.label === 'nest-b100-schema');
  if (best && validated) {
    report({
      bench: 'transport',
      name: 'transport, Nest handler COUNT 100, with schema validation (drain)',
      value: validated.drain.rate,
      unit: 'msgs/s',
      baseline: { name: 'same consumer without schema', value: best.drain.rate },
      target: '>= 0.8',
      note: `consumer CPU/msg ${validated.drain.cpuUsPerMsg.toFixed(1)} us with schema, ${best.drain.cpuUsPerMsg.toFixed(1)} us without`,
    });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
