#!/usr/bin/env node
'use strict';
/**
 * The records floor of bench/jobs (issue #15 §2): plain-worker.js plus exactly the durable writes
 * a job-coordinator replica makes for a job, through the same JobStore and Lua script: the claim
 * (secrets taken, metadata read, queued -> running with its event), the `running` status record
 * with the process group (procs add), the terminal status with its record and event (procs rem).
 * Nothing else: no helper process, no output pipes or log writer, no cgroup or process-group
 * containment, no cancel bus. Whatever coordbus keeps beyond these writes is missing here, so a
 * runner making these writes the same way cannot be faster than this one; its rate against the
 * plain worker's is the ceiling the records alone put on the job-coordinator's.
 * Usage: node records-worker.js <redisUrl> <namespace> <concurrency> <cmd...>. Prints `ready`.
 */
const { spawn } = require('node:child_process');
const os = require('node:os');
const { Worker } = require('bullmq');
const Redis = require('ioredis');
const { dist } = require('../lib');

const { Keyspace, EnvelopeCodec } = require(dist('libs/envelope/src'));
const { JobStore } = require(dist('libs/jobs/src/store/job-store.js'));
// The replica's own /proc reader: proc_start is recorded as the replica records it.
const { readStat } = require(dist('libs/jobs/src/exec/containment.js'));

const [url, namespace, concurrency, ...argv] = process.argv.slice(2);
const connection = new Redis(url, { maxRetriesPerRequest: null });
const keyspace = new Keyspace(namespace);
const store = new JobStore(connection, keyspace, new EnvelopeCodec());
const host = os.hostname();
const runner = { id: `records-${process.pid}`, pid: process.pid, start: Date.now() };

async function run(job) {
  const id = job.data.id;
  const fields = {
    started_at: new Date().toISOString(),
    host,
    runner_id: runner.id,
    runner_pid: runner.pid,
    runner_start: runner.start,
    kill_grace_ms: 5000,
  };
  const { meta, claim } = await store.claim(id, fields, job.data.event, {});
  if (!meta) return 'missing';
  const code = await new Promise((resolve, reject) => {
    const c = spawn(argv[0], argv.slice(1), { stdio: 'ignore', detached: true });
    c.once('error', reject);
    const running = store.transition(id, {
      from: ['running', 'cancelling'],
      fields: { pgid: c.pid, proc_start: readStat(c.pid)?.start ?? null },
      record: {
        ts: new Date().toISOString(),
        kind: 'status',
        status: 'running',
        reason: `pid ${c.pid} on ${host}`,
      },
      minSeq: claim.nextSeq,
      procs: { host, op: 'add' },
    });
    c.once('exit', (exitCode) => running.then(() => resolve(exitCode), reject));
  });
  const finishedAt = new Date().toISOString();
  const status = code === 0 ? 'succeeded' : 'failed';
  await store.transition(id, {
    from: ['running', 'cancelling'],
    to: status,
    fields: { exit_code: code, signal: null, reason: null, finished_at: finishedAt },
    record: { ts: finishedAt, kind: 'status', status, exit_code: code, signal: null },
    minSeq: claim.nextSeq + 1,
    event: meta,
    procs: { host, op: 'rem' },
  });
  return status;
}

// The replica's BullMQ options (libs/jobs/src/queue/worker.ts).
const worker = new Worker(keyspace.jobQueue, run, {
  connection,
  prefix: keyspace.bullPrefix,
  concurrency: Number(concurrency),
  maxStalledCount: 0,
  removeOnComplete: { count: 0 },
  removeOnFail: { age: 86_400 },
});
worker.waitUntilReady().then(() => console.log('ready'));
process.once('SIGTERM', () => worker.close().then(() => process.exit(0)));
