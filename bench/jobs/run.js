#!/usr/bin/env node
'use strict';
/**
 * Job-coordinator benchmark (issue #7). Needs `npm run build` and a Redis (REDIS_URL, default
 * redis://127.0.0.1:6379). Prints, for no-op jobs (`true`):
 *   - throughput from submit to succeeded with 1 and 2 replicas (real processes),
 *   - submit -> start latency p50/p99 on an idle replica (start = the replica claimed the job;
 *     also to the process being spawned, from the job's `running` status record),
 * beside the same-run baseline (issue #15 §2): a plain BullMQ worker process (plain-worker.js)
 * spawning `true` at the same concurrency, fed the same way; and the floor: one Node process
 * spawning `true` in a loop; and the records floor (records-worker.js): that worker plus the
 * replica's durable writes for each job, nothing else.
 *
 * The plain worker, the records floor (forking, and with the spawn addon), one replica and one
 * replica forking its jobs from the spawner helper (JOBS_NATIVE_SPAWN=0) run in alternating rounds
 * (each round in
 * another order), and the round with the median ratio counts: this machine's speed drifts by
 * tens of percent within a minute, and three runs one after the other compared how fast the
 * machine was at each moment as much as how fast each runner was.
 *
 * Usage: node bench/jobs/run.js [jobs per run=400] [latencySamples=200] [rounds=3]
 */
const { spawn } = require('node:child_process');
const Redis = require('ioredis');
const {
  deleteKeys,
  dist,
  hrtime,
  pct,
  procCpuMs,
  report,
  requireBuilt,
  root,
  secondsSince,
  sleep,
  startService,
  stopProcess,
} = require('../lib');

requireBuilt('apps/job-coordinator/main.js');
const { Keyspace, EnvelopeCodec, newUlid } = require(dist('libs/envelope/src'));
const { JobStore } = require(dist('libs/jobs/src/store/job-store.js'));
const { JobSubmitter, newJob } = require(dist('libs/jobs/src/queue/submit.js'));
const { createJobQueue } = require(dist('libs/jobs/src/queue/bull.js'));

const N = Number(process.argv[2] ?? 400);
const SAMPLES = Number(process.argv[3] ?? 200);
const ROUNDS = Number(process.argv[4] ?? 3);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) {
  console.error(
    `rounds must be a whole number >= 1 (got ${process.argv[4]}): node bench/jobs/run.js [jobs] [latencySamples] [rounds]`,
  );
  process.exit(2);
}
const CONCURRENCY = Number(process.env.JOBS_CONCURRENCY ?? 4);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** utime + stime of a process, in ms (0 once it is gone). */
const cpuTimeMs = (pid) => procCpuMs(pid, 0);

/** [utime, stime] of a process in ms ([0, 0] once it is gone): user code vs kernel (fork, exec, pipes). */
function cpuSplitMs(pid) {
  try {
    const stat = require('node:fs').readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const perTick = procCpuMs(pid, 0) / (Number(f[11]) + Number(f[12]) || 1);
    return [Number(f[11]) * perTick, Number(f[12]) * perTick];
  } catch {
    return [0, 0];
  }
}
/**
 * A replica's pid and its job spawner helper's (libs/jobs exec/spawner): the helper's CPU is the
 * replica's too. Jobs themselves (also its children) are not counted, as for the plain worker.
 */
function withHelpers(pid) {
  const fs = require('node:fs');
  let kids = [];
  try {
    kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    /* gone */
  }
  const helpers = kids.filter((k) => {
    try {
      return fs.readFileSync(`/proc/${k}/comm`, 'utf8').trim() === 'coordbus-spawn';
    } catch {
      return false;
    }
  });
  return [pid, ...helpers.map(Number)];
}
/**
 * CPU the Redis server spent so far, in ms (INFO cpu): server-wide, so other clients of a shared
 * Redis count too; beside the same-run plain worker it shows what the scripts cost the server.
 */
async function redisCpuMs(redis) {
  const info = await redis.info('cpu');
  const field = (name) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1000;
}
const CLK_TCK = Number(require('node:child_process').execSync('getconf CLK_TCK').toString()) || 100;
/**
 * CPU of the reaped children of these processes, in ms (cutime + cstime): the jobs themselves (a
 * replica's helper reaps them; the plain worker its own), what a job costs the machine beside
 * what its runner spends.
 */
function childrenCpuMs(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = require('node:fs').readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[13]) + Number(f[14]);
    } catch {
      /* gone */
    }
  }
  return (ticks * 1000) / CLK_TCK;
}
const splitOf = (pids) => pids.map(cpuSplitMs).reduce((a, b) => [a[0] + b[0], a[1] + b[1]], [0, 0]);

function spawnTrue() {
  return new Promise((resolve, reject) => {
    const c = spawn('true', [], { stdio: 'ignore', detached: true });
    c.once('error', reject);
    c.once('exit', resolve);
  });
}

async function floor(n, parallel) {
  const t0 = hrtime();
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next++ < n) await spawnTrue();
    }),
  );
  return n / secondsSince(t0);
}

/**
 * Jobs/s of a plain BullMQ worker (own process) spawning `true` at CONCURRENCY, submitted as
 * scenario() does, with its CPU per job (the figure to compare on a loaded machine).
 */
async function plainBullmq() {
  const { Queue } = require('bullmq');
  const name = `bench-plain-${newUlid().slice(-8).toLowerCase()}`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection: redis });
  const child = spawn(
    process.execPath,
    [require.resolve('./plain-worker.js'), REDIS_URL, name, String(CONCURRENCY), 'true'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    await new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => d.toString().includes('ready') && resolve());
      child.once('exit', (code) => reject(new Error(`plain BullMQ worker exited ${code}`)));
    });
    const done = async (n) => {
      while ((await queue.getCompletedCount()) < n) await sleep(2);
    };
    for (let i = 0; i < 10; i++) await queue.add('noop', { id: newUlid() });
    await done(10);
    const cpu0 = cpuTimeMs(child.pid);
    const split0 = splitOf([child.pid]);
    const bench0 = (process.cpuUsage().user + process.cpuUsage().system) / 1000;
    const redis0 = await redisCpuMs(redis);
    const jobs0 = childrenCpuMs([child.pid]);
    const t0 = hrtime();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next++ < N) await queue.add('noop', { id: newUlid() });
      }),
    );
    await done(N + 10);
    const secs = secondsSince(t0);
    const redisCpuPerJob = ((await redisCpuMs(redis)) - redis0) / N;
    return {
      redisCpuPerJob,
      jobCpuPerJob: (childrenCpuMs([child.pid]) - jobs0) / N,
      rate: N / secs,
      cpuPerJob: (cpuTimeMs(child.pid) - cpu0) / N,
      split: splitOf([child.pid]).map((v, i) => (v - split0[i]) / N),
      submitCpuPerJob: ((process.cpuUsage().user + process.cpuUsage().system) / 1000 - bench0) / N,
    };
  } finally {
    await stopProcess(child);
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    redis.disconnect();
  }
}

async function startReplica(namespace, extraEnv = {}) {
  const { child } = await startService('job-coordinator', {
    // BENCH_NODE_ARGS: extra node flags for the replicas (e.g. --cpu-prof to see where a job's CPU goes).
    nodeArgs: (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
    env: {
      REDIS_URL,
      COORDBUS_NAMESPACE: namespace,
      JOBS_CONCURRENCY: String(CONCURRENCY),
      JOBS_PRUNE_INTERVAL: '0',
      ...extraEnv,
    },
    ready: 'job worker started',
  });
  return child;
}

function request() {
  return {
    name: 'noop',
    hook: 'bench',
    worktree: null,
    tags: [],
    argv: ['true'],
    shell: false,
    cwd: root,
    env: {},
    timeout_ms: null,
    sample_every: 1,
    keep_last: null,
    retention_ms: null,
    background: true,
  };
}

/**
 * The records floor (records-worker.js): a plain BullMQ worker that also makes the replica's
 * durable writes for each job, and nothing else. Started and fed like a replica (scenario()).
 */
async function startRecordsWorker(namespace, nativeSpawn = false) {
  const child = spawn(
    process.execPath,
    [
      require.resolve('./records-worker.js'),
      REDIS_URL,
      namespace,
      String(CONCURRENCY),
      ...(nativeSpawn ? ['--native-spawn'] : []),
      'true',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => d.toString().includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`records worker exited ${code}`)));
  });
  return child;
}

async function scenario(replicas, start = startReplica, measureLatency = false) {
  const namespace = `bench-jobs-${newUlid().slice(-8).toLowerCase()}`;
  const keyspace = new Keyspace(namespace);
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const store = new JobStore(redis, keyspace, new EnvelopeCodec());
  let queue;
  const submitter = new JobSubmitter(redis, store, () => (queue ??= createJobQueue(redis, keyspace)));
  const procs = [];
  try {
    for (let i = 0; i < replicas; i++) procs.push(await start(namespace));
    // Warm-up (script loading, connections).
    for (let i = 0; i < 10; i++) {
      const { meta } = newJob(request(), newUlid());
      await submitter.submitBackground(meta, {});
    }
    while ((await redis.scard(store.keys.status('succeeded'))) < 10) await sleep(5);

    const inv = newUlid();
    const pids = procs.flatMap((p) => withHelpers(p.pid));
    const cpu0 = pids.reduce((sum, p) => sum + cpuTimeMs(p), 0);
    const split0 = splitOf(pids);
    const helpers = pids.filter((p) => !procs.some((c) => c.pid === p));
    const helperCpu0 = helpers.reduce((sum, p) => sum + cpuTimeMs(p), 0);
    const bench0 = (process.cpuUsage().user + process.cpuUsage().system) / 1000;
    const redis0 = await redisCpuMs(redis);
    const jobs0 = childrenCpuMs(pids);
    const t0 = hrtime();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next++ < N) {
          const { meta } = newJob(request(), inv);
          await submitter.submitBackground(meta, {});
        }
      }),
    );
    while ((await redis.scard(store.keys.status('succeeded'))) < N + 10) await sleep(2);
    const secs = secondsSince(t0);
    const cpuMs = pids.reduce((sum, p) => sum + cpuTimeMs(p), 0) - cpu0;
    const split = splitOf(pids).map((v, i) => (v - split0[i]) / N);
    const helperCpuMs = helpers.reduce((sum, p) => sum + cpuTimeMs(p), 0) - helperCpu0;
    const benchCpuMs = (process.cpuUsage().user + process.cpuUsage().system) / 1000 - bench0;
    const redisCpuPerJob = ((await redisCpuMs(redis)) - redis0) / N;
    const jobCpuPerJob = (childrenCpuMs(pids) - jobs0) / N;
    const failed =
      (await redis.scard(store.keys.status('failed'))) + (await redis.scard(store.keys.status('crashed')));

    // Where a job's time went during the throughput run (means over the N jobs).
    const jobs = (await store.list(['succeeded'])).filter((j) => j.invocation_id === inv);
    const mean = (f) => jobs.reduce((a, j) => a + f(j), 0) / jobs.length;
    // The `running` status record (seq 2) is written once the process exists.
    const pipe = redis.pipeline();
    for (const j of jobs) pipe.xrange(store.keys.log(j.id), '2-0', '2-0');
    const spawnedAt = new Map(
      ((await pipe.exec()) ?? []).map(([, entries], i) => [
        jobs[i].id,
        entries?.[0] ? Date.parse(JSON.parse(entries[0][1][5]).ts) : NaN,
      ]),
    );
    const phases = {
      queued: mean((j) => Date.parse(j.started_at) - Date.parse(j.created_at)),
      running: mean((j) => Date.parse(j.finished_at) - Date.parse(j.started_at)),
      spawning: mean((j) => spawnedAt.get(j.id) - Date.parse(j.started_at)),
      ending: mean((j) => Date.parse(j.finished_at) - spawnedAt.get(j.id)),
    };
    let latency = null;
    if (measureLatency) {
      const claim = [];
      const spawned = [];
      for (let i = 0; i < SAMPLES; i++) {
        const { meta } = newJob(request(), newUlid());
        await submitter.submitBackground(meta, {});
        let j;
        while (!(j = await store.get(meta.id)) || j.status !== 'succeeded') await sleep(1);
        const created = Date.parse(j.created_at);
        claim.push(Date.parse(j.started_at) - created);
        const [, fields] = (await redis.xrange(store.keys.log(meta.id), '2-0', '2-0'))[0];
        spawned.push(Date.parse(JSON.parse(fields[5]).ts) - created);
        await sleep(20); // idle between samples
      }
      latency = { claim, spawned };
    }
    return {
      rate: N / secs,
      secs,
      failed,
      latency,
      phases,
      cpuPerJob: cpuMs / N,
      split,
      helperCpuPerJob: helpers.length ? helperCpuMs / N : null,
      submitCpuPerJob: benchCpuMs / N,
      redisCpuPerJob,
      jobCpuPerJob,
    };
  } finally {
    await Promise.all(procs.map((p) => stopProcess(p)));
    await queue?.close();
    await deleteKeys(redis, `${namespace}:*`);
    redis.disconnect();
  }
}

(async () => {
  console.log(
    `job-coordinator bench: ${N} no-op jobs (true), JOBS_CONCURRENCY=${CONCURRENCY} per replica, ${require('node:os').cpus().length} CPUs`,
  );
  const floorSeq = await floor(N, 1);
  const floorPar = await floor(N, CONCURRENCY);
  console.log(
    `floor: one Node process spawning true in a loop: ${floorSeq.toFixed(0)}/s sequential, ${floorPar.toFixed(0)}/s with ${CONCURRENCY} in parallel`,
  );
  const describe = (r) =>
    `CPU per job: replicas ${r.cpuPerJob.toFixed(1)} ms (user ${r.split[0].toFixed(1)} / kernel ${r.split[1].toFixed(1)}${r.helperCpuPerJob == null ? '' : `; of it spawner helpers ${r.helperCpuPerJob.toFixed(1)}`}), submitter ${r.submitCpuPerJob.toFixed(1)} ms, Redis ${r.redisCpuPerJob.toFixed(1)} ms, the jobs themselves ${r.jobCpuPerJob.toFixed(1)} ms`;
  const line = (label, r) =>
    console.log(
      `  ${label}: ${r.rate.toFixed(0)} jobs/s submit->succeeded (${(r.secs * 1000).toFixed(0)} ms for ${N}, ${r.failed} failed) = ${((100 * r.rate) / floorSeq).toFixed(0)}% of the sequential floor; ${describe(r)}; mean per job: queued ${r.phases.queued.toFixed(0)} ms, claim->finished ${r.phases.running.toFixed(0)} ms (claim->spawned ${r.phases.spawning.toFixed(1)}, spawned->finished ${r.phases.ending.toFixed(1)})`,
    );
  const runners = {
    plain: async () => {
      const r = await plainBullmq();
      console.log(
        `  plain BullMQ worker process spawning true, concurrency ${CONCURRENCY}: ${r.rate.toFixed(0)}/s; ${describe(r)}`,
      );
      return r;
    },
    records: async () => {
      const r = await scenario(1, startRecordsWorker);
      line('records floor (plain worker + the durable writes only)', r);
      return r;
    },
    // The records and the replica's own start (the spawn addon), nothing else: its bound.
    recordsNative: async () => {
      const r = await scenario(1, (ns) => startRecordsWorker(ns, true));
      line('records floor, spawn addon', r);
      return r;
    },
    one: async (round) => {
      const r = await scenario(1, startReplica, round === 0);
      line('1 replica ', r);
      return r;
    },
    // The same replica forking its jobs from the spawner helper, as without the addon.
    forked: async () => {
      const r = await scenario(1, (ns) => startReplica(ns, { JOBS_NATIVE_SPAWN: '0' }));
      line('1 replica, JOBS_NATIVE_SPAWN=0', r);
      return r;
    },
  };
  const order = ['plain', 'records', 'recordsNative', 'one', 'forked'];
  const rounds = [];
  for (let round = 0; round < ROUNDS; round++) {
    const turn = order.map((_, i) => order[(i + round) % order.length]);
    console.log(`round ${round + 1} of ${ROUNDS} (${turn.join(', ')}):`);
    const r = {};
    for (const k of turn) r[k] = await runners[k](round);
    rounds.push(r);
  }
  /** The round whose ratio a/b is the median of all rounds' (the middle one of an odd number). */
  const medianRound = (a, b) =>
    [...rounds].sort((x, y) => x[a].rate / x[b].rate - y[a].rate / y[b].rate)[
      Math.floor((rounds.length - 1) / 2)
    ];
  const ratios = (a, b) => rounds.map((r) => (r[a].rate / r[b].rate).toFixed(2)).join(', ');
  console.log(
    `replica / plain worker by round: ${ratios('one', 'plain')}; records floor / plain worker: ${ratios('records', 'plain')}; replica / records floor: ${ratios('one', 'records')}; records floor with the spawn addon / plain worker: ${ratios('recordsNative', 'plain')}; replica / records floor with the spawn addon: ${ratios('one', 'recordsNative')}; replica / replica with JOBS_NATIVE_SPAWN=0: ${ratios('one', 'forked')}`,
  );
  const two = await scenario(2);
  line('2 replicas', two);
  const { claim, spawned } = rounds[0].one.latency;
  console.log(
    `idle submit->start (claimed by the replica), ${claim.length} samples: p50 ${pct(claim, 50)} ms, p99 ${pct(claim, 99)} ms`,
  );
  console.log(
    `idle submit->process spawned, ${spawned.length} samples: p50 ${pct(spawned, 50)} ms, p99 ${pct(spawned, 99)} ms`,
  );
  const plainName = `plain BullMQ worker spawning true, concurrency ${CONCURRENCY}`;
  const note = `the round with the median ratio of ${ROUNDS} alternating rounds`;
  const vsPlain = medianRound('one', 'plain');
  report({
    bench: 'jobs',
    name: 'jobs `true`, 1 replica, submit -> succeeded',
    value: vsPlain.one.rate,
    unit: 'jobs/s',
    baseline: { name: plainName, value: vsPlain.plain.rate },
    target: '>= 0.9',
    note,
  });
  /** A context figure: runner `a` against runner `b`, from the round with the median a/b. */
  const against = (a, b, name, baselineName) => {
    const r = medianRound(a, b);
    report({
      bench: 'jobs',
      name,
      value: r[a].rate,
      unit: 'jobs/s',
      baseline: { name: baselineName, value: r[b].rate },
      note,
    });
  };
  // What the records cost a plain worker that makes them (records-worker.js), forking each job
  // from its own process: a bound on the records with a fork, not on every runner.
  against(
    'records',
    'plain',
    "records floor: plain BullMQ worker + the replica's durable writes, submit -> succeeded",
    plainName,
  );
  against('one', 'records', 'jobs `true`, 1 replica, against the records floor', 'records floor');
  // The same with the replica's own start: the records and the spawn addon, nothing else.
  against(
    'recordsNative',
    'plain',
    'records floor with the spawn addon: plain BullMQ worker + the durable writes, submit -> succeeded',
    plainName,
  );
  against(
    'one',
    'recordsNative',
    'jobs `true`, 1 replica, against the records floor with the spawn addon',
    'records floor with the spawn addon',
  );
  // What starting jobs with the spawn addon instead of forking from a helper gains (JOBS_NATIVE_SPAWN).
  against(
    'one',
    'forked',
    'jobs `true`, 1 replica, spawn addon against the spawner helper',
    'the same replica with JOBS_NATIVE_SPAWN=0',
  );
  report({
    bench: 'jobs',
    name: 'idle submit -> process spawned p99',
    value: pct(spawned, 99),
    unit: 'ms',
    target: '<= 20',
  });
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
