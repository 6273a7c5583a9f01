#!/usr/bin/env node
'use strict';
/**
 * Transport benchmark: messages/s end to end (XADD -> handler -> XACK) through ONE consumer with a
 * trivial handler, at read batch sizes 1, 10 and 100, beside the XADD ceiling measured in the same
 * run with `redis-benchmark` (pipelined, same entry fields).
 *
 *   npm run build && node bench/transport/run.js
 *
 * env: REDIS_URL (default redis://127.0.0.1:6379), BENCH_N (entries per run, default 100000).
 * Uses its own namespace (bench-transport-<pid>) and deletes it afterwards.
 */
require('reflect-metadata');
const { spawn, spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '../..');
const dist = path.join(root, 'dist/libs');
if (!existsSync(path.join(dist, 'redis-streams/src/index.js'))) {
  console.error('dist/ is missing: run `npm run build` first');
  process.exit(2);
}
const Redis = require('ioredis').default;
const { Controller, Module } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const { Ctx, Payload } = require('@nestjs/microservices');
const { Registry } = require('prom-client');
const { RedisStreamsServer, StreamHandler } = require(path.join(dist, 'redis-streams/src/index.js'));
const { EnvelopeCodec, Keyspace, Schemas } = require(path.join(dist, 'envelope/src/index.js'));

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
function benchModule(schema) {
  class BenchController {
    handle(_data, _ctx) {
      handled++;
    }
  }
  const desc = Object.getOwnPropertyDescriptor(BenchController.prototype, 'handle');
  Payload()(BenchController.prototype, 'handle', 0);
  Ctx()(BenchController.prototype, 'handle', 1);
  Reflect.defineMetadata('design:paramtypes', [Object, Object], BenchController.prototype, 'handle');
  StreamHandler({ stream: 'coordIngest', group: 'bench', schema })(BenchController.prototype, 'handle', desc);
  Object.defineProperty(BenchController.prototype, 'handle', desc);
  Controller()(BenchController);
  class BenchModule {}
  Module({ controllers: [BenchController] })(BenchModule);
  return BenchModule;
}

function xaddCeiling() {
  const u = new URL(url);
  const args = ['-h', u.hostname, '-p', u.port || '6379', '-q', '-n', '200000', '-P', '64'];
  if (u.password) args.push('-a', decodeURIComponent(u.password), '--no-auth-warning');
  if (u.username) args.push('--user', decodeURIComponent(u.username));
  const key = `${baseNs}:ceiling:{x}`;
  const run = spawnSync('redis-benchmark', [...args, 'XADD', key, '*', ...FIELDS], { encoding: 'utf8' });
  if (run.error || run.status !== 0)
    return { rate: null, note: `redis-benchmark unavailable (${run.error?.message || run.stderr})` };
  const m = /([\d.]+) requests per second/.exec(run.stdout);
  return { rate: m ? Number(m[1]) : null, note: run.stdout.trim().split('\n').pop() };
}

async function cleanup(redis, ns) {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${ns}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
}

async function runOnce(redis, { label, batchSize, mode, schema }) {
  const ns = `${baseNs}-${label}`;
  const keyspace = new Keyspace(ns);
  const stream = keyspace.coordIngest;
  handled = 0;
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
  let app;
  if (mode === 'nest') {
    app = await NestFactory.createMicroservice(benchModule(schema), { strategy: server, logger: false });
    await app.listen();
  } else {
    server.addStreamHandler({ stream: 'coordIngest', group: 'bench', schema }, () => {
      handled++;
    });
    await new Promise((resolve, reject) => server.listen((err) => (err ? reject(err) : resolve())));
  }
  const t0 = process.hrtime.bigint();
  const producer = spawn(
    process.execPath,
    [path.join(__dirname, 'producer.js'), url, stream, String(N), JSON.stringify(FIELDS)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let produceMs = null;
  producer.stdout.on('data', (d) => {
    const m = /done (\d+)/.exec(String(d));
    if (m) produceMs = Number(m[1]);
  });
  const producerExit = new Promise((resolve) => producer.once('exit', resolve));
  while (handled < N) await new Promise((r) => setTimeout(r, 2));
  for (;;) {
    const [pending] = await redis.xpending(stream, 'bench');
    if (Number(pending) === 0) break;
    await new Promise((r) => setTimeout(r, 1));
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await producerExit;
  if (app) await app.close();
  else await server.close();
  await cleanup(redis, ns);
  return { label, rate: N / seconds, seconds, produceRate: produceMs ? N / (produceMs / 1000) : null };
}

async function main() {
  const redis = new Redis(url);
  const info = await redis.info('server');
  const version = /redis_version:(\S+)/.exec(info)?.[1];
  console.log(
    `coordbus transport benchmark: redis ${version} at ${url}, node ${process.version}, ${N} entries per run`,
  );
  const os = require('node:os');
  const load = os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  console.log(
    `machine: ${os.cpus().length} CPUs, load average ${load} at start (producer, consumer and Redis share them)`,
  );
  console.log(
    `entry: ${FIELDS.join(' ').length} bytes of fields (a coord op envelope); consumer concurrency 256, blockMs 100\n`,
  );

  const ceiling = xaddCeiling();
  await cleanup(redis, baseNs);
  console.log(
    `XADD ceiling (redis-benchmark -n 200000 -P 64, same fields): ${ceiling.rate ? Math.round(ceiling.rate) + ' msgs/s' : ceiling.note}\n`,
  );

  const runs = [
    { label: 'nest-b1', batchSize: 1, mode: 'nest' },
    { label: 'nest-b10', batchSize: 10, mode: 'nest' },
    { label: 'nest-b100', batchSize: 100, mode: 'nest' },
    { label: 'plain-b100', batchSize: 100, mode: 'plain' },
    { label: 'nest-b100-schema', batchSize: 100, mode: 'nest', schema: 'coordOp' },
  ];
  const rows = [];
  for (const r of runs) {
    const res = await runOnce(redis, r);
    rows.push({ ...r, ...res });
    console.log(
      `${r.mode.padEnd(6)} batch ${String(r.batchSize).padStart(3)}${r.schema ? ' +schema' : '        '}  ` +
        `${String(Math.round(res.rate)).padStart(7)} msgs/s end to end` +
        (ceiling.rate ? `  (${((res.rate / ceiling.rate) * 100).toFixed(1)}% of XADD ceiling)` : '') +
        `  [${res.seconds.toFixed(2)} s; producer alone ${res.produceRate ? Math.round(res.produceRate) : '?'} msgs/s]`,
    );
  }
  await cleanup(redis, baseNs);
  redis.disconnect();
  const best = rows.find((r) => r.label === 'nest-b100');
  console.log(
    `\ntarget >= 50000 msgs/s through one consumer (Nest, batch 100): ${best.rate >= 50000 ? 'met' : 'NOT met'}`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
