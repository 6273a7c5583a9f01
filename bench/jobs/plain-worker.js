#!/usr/bin/env node
'use strict';
/**
 * The baseline of bench/jobs (issue #15 §2): a plain BullMQ worker in its own process, spawning
 * the same command at the same concurrency as a job-coordinator replica, with no job store, log
 * stream, events or containment. Usage: node plain-worker.js <redisUrl> <queue> <concurrency> <cmd...>
 * Prints `ready` once the worker runs.
 */
const { spawn } = require('node:child_process');
const { Worker } = require('bullmq');
const Redis = require('ioredis');

const [url, queue, concurrency, ...argv] = process.argv.slice(2);
const connection = new Redis(url, { maxRetriesPerRequest: null });
const worker = new Worker(
  queue,
  () =>
    new Promise((resolve, reject) => {
      const c = spawn(argv[0], argv.slice(1), { stdio: 'ignore', detached: true });
      c.once('error', reject);
      c.once('exit', (code) => (code === 0 ? resolve(code) : reject(new Error(`exit ${code}`))));
    }),
  { connection, concurrency: Number(concurrency), removeOnComplete: { count: 100_000 } },
);
worker.waitUntilReady().then(() => console.log('ready'));
process.once('SIGTERM', () => worker.close().then(() => process.exit(0)));
