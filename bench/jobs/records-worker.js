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
 * With `--native-spawn` before the command it starts each job as a replica does, with the spawn
 * addon (NativeSpawner) from this process instead of forking: the records and the replica's own
 * start, nothing else, so the replica can be held to it.
 * Usage: node records-worker.js <redisUrl> <namespace> <concurrency> [--native-spawn] <cmd...>.
 * Prints `ready`.
 */
const { spawn } = require('node:child_process');
const { EventEmitter } = require('node:events');
const os = require('node:os');
const { Worker } = require('bullmq');
const Redis = require('ioredis');
const { dist } = require('../lib');

const { Keyspace, EnvelopeCodec } = require(dist('libs/envelope/src'));
const { JobStore } = require(dist('libs/jobs/src/store/job-store.js'));
// The replica's own /proc reader: proc_start is recorded as the replica records it.
const { readStat } = require(dist('libs/jobs/src/exec/containment.js'));

const [url, namespace, concurrency, ...rest] = process.argv.slice(2);
const native = rest[0] === '--native-spawn';
const argv = native ? rest.slice(1) : rest;

/** The replica's own NativeSpawner (the spawn addon), its output read and dropped. */
function nativeStarter() {
  const { NativeSpawner } = require(dist('libs/jobs/src/exec/native-spawner.js'));
  const spawner = NativeSpawner.open();
  if (!(spawner instanceof NativeSpawner)) throw new Error(spawner.unavailable);
  const env = { PATH: process.env.PATH };
  return (onStarted, onExit, onError) =>
    spawner.spawn(
      { file: argv[0], args: argv.slice(1), cwd: process.cwd(), env, stdin: null },
      {
        started: ({ pid }) => onStarted(pid),
        failed: (code) => onError(new Error(code)),
        error: () => undefined,
        data: () => undefined,
        end: () => undefined,
        exit: (code) => onExit(code),
      },
    );
}
const startNative = native ? nativeStarter() : null;
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
    let c;
    if (startNative) {
      c = new EventEmitter();
      startNative(
        (pid) => (c.pid = pid),
        (exitCode) => c.emit('exit', exitCode),
        (err) => c.emit('error', err),
      );
    } else {
      c = spawn(argv[0], argv.slice(1), { stdio: 'ignore', detached: true });
    }
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
