#!/usr/bin/env node
'use strict';
// bench/fleet: N agent sessions (default 1 000) behaving the way agents with the installed hooks
// do, for a fixed time, against ALL services started the way `npm start` starts them (Redis with
// AOF on, every service scripts/start.mjs starts with its local defaults), on this machine.
//
//   npm run build && npm run bench:fleet -- [--sessions 1000] [--seconds 90] [--ttl 60] [--json]
//
// Sessions are played by --drivers forked processes (bench/fleet/driver.js) through `runCoord`,
// the function `bin/coord` runs: 1 000 sessions spawning a Node process per op would measure
// process start-up, not coordbus. The real `coord` CLI process is timed on a small sample in the
// same run, beside `node -e 0`. Their hook runs come from one more driver (--hook-driver 1, the
// default), as real hook runs are processes of their own and not part of the agent timing its ops.
//
// Reports: coord op p50/p99 (in-process, connect + op + envelopes), envelope end to end p99 (op ->
// pub/sub, op -> archive row), cull lateness p99 vs the TTL, CPU-seconds per service per 1 000
// sessions per minute (/proc, steady window after the ramp), Redis memory per session (INFO
// memory delta / sessions, and by key family), and loss: every op envelope on pub/sub and in the
// archive exactly once, every silent session culled exactly once, no heartbeating session culled,
// every hook job finished. Targets (1 000 sessions, 2 cores): op p99 <= 20 ms, envelope p99 <=
// 100 ms, no loss, the five services together <= 0.5 core, each stated through report() (so
// `npm run bench` records them). --json also prints the whole result object on stdout.
const { execFile, fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { monitorEventLoopDelay, performance } = require('node:perf_hooks');
const Redis = require('ioredis').default;
const Database = require('better-sqlite3');
const {
  arg,
  dist,
  fmt,
  freePort,
  hasFlag,
  pct,
  procCpuMs,
  report,
  requireBuilt,
  root,
  sleep,
  startRedis,
  startService,
  stopProcess,
} = require('../lib');

const N = arg('sessions', 1000);
const SECONDS = arg('seconds', 90);
const TTL_S = arg('ttl', 60);
const RAMP_S = arg('ramp', 10);
const DRIVERS = arg('drivers', 2);
// 1: hook jobs from a driver process of their own, as real hook runs are their own processes
// (driver.js); 0: each session's hook jobs from the driver that plays its ops.
const HOOK_DRIVER = arg('hook-driver', 1);
const SILENT = arg('silent', 0.1);
const OP_EVERY_S = arg('op-every', 5);
const JOB_EVERY_S = arg('job-every', 120);
const CLI_SAMPLE = arg('cli-sample', 20);
const IDLE_S = arg('idle', 5);
const JSON_OUT = hasFlag('json');
// A silent session goes quiet U(2, 8) s after it starts; every one must be culled in the run.
const SILENT_AFTER_S = [2, 8];
const CULL_INTERVAL_MS = Math.min(30_000, Math.max(250, Math.round((TTL_S * 1000) / 10))); // sentinel default

const TARGETS = { opP99Ms: 20, envelopeP99Ms: 100, serviceCores: 0.5 };

const log = (...a) => (JSON_OUT ? console.error(...a) : console.log(...a));
const loadavg = () => os.loadavg().map((x) => Number(x.toFixed(2)));
const r1 = (x) => (x === undefined ? null : Math.round(x * 10) / 10);
const r2 = (x) => (x === undefined ? null : Math.round(x * 100) / 100);

function execMs(file, args, env) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    execFile(file, args, { env: { ...process.env, ...env }, cwd: root }, (err) => {
      resolve({ ms: performance.now() - t0, code: err ? (err.code ?? 1) : 0 });
    });
  });
}

/**
 * Redis CPU per unit of work, measured after the drain with the services idle (CPU time from
 * /proc, so unlike wall figures it holds on a loaded machine): a coord heartbeat script that
 * writes no event (what most heartbeats are), a `send` (inbox + `inbox.deliver` event, read
 * then by the sentinel and the archivist: all of that included), and one client connection
 * opened, PINGed and closed (what every `coord` process costs Redis besides its op).
 */
async function calibrate(url, redisPid, ks, ttlMs) {
  const { CoordStore, RespClient } = require(dist('libs/coord/src/index.js'));
  const client = new RespClient(url);
  const store = new CoordStore(client, { keyspace: ks });
  // The deployment's TTL (the heartbeat event rule reads it in Redis), as the sentinel seeds it.
  await store.seedSessionTtl(ttlMs);
  const per = async (n, fn, width = 64) => {
    const c0 = procCpuMs(redisPid);
    for (let i = 0; i < n; i += width)
      await Promise.all(Array.from({ length: Math.min(width, n - i) }, (_, j) => fn(i + j)));
    await sleep(1000); // the consumers' share of the work lands in the window too
    return Math.round(((procCpuMs(redisPid) - c0) * 1000) / n); // µs per op
  };
  const few = Array.from({ length: 50 }, (_, i) => `calibrate-${i}`);
  await Promise.all(few.map((id, i) => store.register({ sessionId: id, host: 'bench', pid: 1 + i })));
  const heartbeatUs = await per(20_000, (i) => store.heartbeat(few[i % few.length]));
  const sendUs = await per(5_000, (i) => store.send(few[i % few.length], few[(i + 1) % few.length], 'x'));
  const connectionUs = await per(
    3_000,
    async () => {
      const c = new RespClient(url);
      await c.call('PING');
      c.disconnect();
    },
    16,
  );
  client.disconnect();
  return { heartbeatUs, sendUs, connectionUs };
}

/** INFO commandstats as {command: {calls, usec}}. */
async function commandStats(redis) {
  const out = {};
  for (const m of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm))
    out[m[1]] = { calls: Number(m[2]), usec: Number(m[3]) };
  return out;
}

/** Sums MEMORY USAGE by key family (ids replaced by *), biggest first. */
async function memoryByFamily(redis) {
  const families = {};
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    if (!keys.length) continue;
    const p = redis.pipeline();
    for (const k of keys) p.memory('USAGE', k, 'SAMPLES', '0');
    const sizes = await p.exec();
    keys.forEach((k, i) => {
      const fam = k
        .split(':')
        .map((seg) =>
          /^fleet-\d+$|^res-\d+$|^[0-9A-HJKMNP-TV-Z]{26}$|^\d+$|^[0-9a-f-]{16,}$/i.test(seg) ? '*' : seg,
        )
        .join(':');
      const f = (families[fam] ??= { keys: 0, bytes: 0 });
      f.keys++;
      f.bytes += Number(sizes[i][1]) || 0;
    });
  } while (cursor !== '0');
  return Object.entries(families).sort((a, b) => b[1].bytes - a[1].bytes);
}

async function main() {
  requireBuilt('apps/cli/src/coord/run.js', 'apps/cli/src/jobs/hooks-run.js', 'coord/coord.js');
  // The services scripts/start.mjs starts, from the table it reads.
  const services = require(path.join(root, 'libs', 'config', 'src', 'service-table.json'));
  const { Keyspace, TERMINAL_JOB_STATUSES } = require(dist('libs/envelope/src/index.js'));
  const { liveEnvelope } = require(dist('libs/coord/src/index.js'));
  const ks = new Keyspace('');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-fleet-'));
  const cleanup = [];
  process.on('exit', () => cleanup.forEach((f) => f()));
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
  cleanup.push(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const load0 = loadavg();
  log(
    `bench/fleet: ${fmt(N)} sessions for ${SECONDS} s (ramp ${RAMP_S} s), TTL ${TTL_S} s, ${DRIVERS} driver(s)${HOOK_DRIVER ? ' + one for hook runs' : ''}, ` +
      `${os.cpus().length} CPUs, load average ${load0.join(' ')}`,
  );

  // As `npm start`: Redis with AOF on (private here, so its memory and CPU are the fleet's alone).
  const redisSrv = await startRedis({ useEnv: false, args: ['--appendonly', 'yes'] });
  cleanup.push(redisSrv.stop);
  const redis = new Redis(redisSrv.url);
  const env = { REDIS_URL: redisSrv.url, COORD_SESSION_TTL: String(TTL_S) };

  // Every service with scripts/start.mjs's local defaults (archive in SQLite, tailer config).
  fs.mkdirSync(path.join(dataDir, 'logs'));
  fs.writeFileSync(
    path.join(dataDir, 'log-tailer.yml'),
    'targets:\n  - path: logs/headroom.log\n    observer: headroom-stage-timings\n    source: headroom\n',
  );
  const localEnv = {
    'telemetry-archivist': { ARCHIVIST_DATA_DIR: path.join(dataDir, 'archive') },
    'log-tailer': { TAILER_CONFIG: path.join(dataDir, 'log-tailer.yml') },
  };
  const procs = [];
  for (const svc of services) {
    // A free port can be taken by another process before the service binds it: try again.
    let child;
    for (let attempt = 1; !child; attempt++) {
      const port = await freePort();
      try {
        ({ child } = await startService(svc.name, {
          env: { ...env, HTTP_PORT: String(port), ...localEnv[svc.name] },
          readyUrl: `http://127.0.0.1:${port}/readyz`,
          stdout: attempt < 3 ? 'ignore' : 'inherit',
          stderr: 'capture',
        }));
      } catch (err) {
        if (attempt >= 3) throw err;
      }
    }
    cleanup.push(() => child.exitCode === null && child.kill('SIGKILL'));
    procs.push({ name: svc.name, child });
  }
  procs.push({ name: 'redis-server', child: { pid: redisSrv.pid } });

  // The hook jobs: a project whose Stop hook queues one short background job.
  const project = path.join(dataDir, 'project');
  fs.mkdirSync(path.join(project, '.coordbus'), { recursive: true });
  const hooksFile = path.join(project, '.coordbus', 'hooks.yml');
  fs.writeFileSync(hooksFile, 'Stop:\n  - name: fleet-check\n    run: ["true"]\n    background: true\n');

  // Pub/sub: every envelope the fan-out publishes, with its delay from the envelope's ts.
  const sub = new Redis(redisSrv.url);
  const ownLoop = monitorEventLoopDelay({ resolution: 10 });
  ownLoop.enable();
  const onPubsub = {};
  const pubsubMs = [];
  await sub.psubscribe(ks.coordLevelPattern);
  sub.on('pmessage', (_p, _ch, msg) => {
    const now = Date.now();
    const e = JSON.parse(msg);
    const k = `${e.fields.session}|${e.fields.op}|${e.fields.phase}`;
    onPubsub[k] = (onPubsub[k] ?? 0) + 1;
    pubsubMs.push(now - Date.parse(e.ts));
  });

  await sleep(2000); // services settle (group creation, first polls)
  const mem0 = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))[1]);
  // Same-run baseline: what the services burn with no session at all (polling, timers, metrics).
  const cpuOf = () => Object.fromEntries(procs.map((p) => [p.name, procCpuMs(p.child.pid, NaN)]));
  const idle0 = cpuOf();
  const tIdle = Date.now();
  await sleep(IDLE_S * 1000);
  const idle1 = cpuOf();
  const idleS = (Date.now() - tIdle) / 1000;

  // Sessions, split round-robin over the drivers.
  const total = N;
  const silentIds = new Set();
  const slices = Array.from({ length: DRIVERS }, () => []);
  for (let i = 0; i < total; i++) {
    const silent = SILENT > 0 && (i + 1) % Math.round(1 / SILENT) === 0;
    const id = `fleet-${i}`;
    if (silent) silentIds.add(id);
    slices[i % DRIVERS].push({
      id,
      pid: 100_000 + i,
      startDelayMs: Math.round((i / total) * RAMP_S * 1000),
      silentAfterMs: silent
        ? Math.round((SILENT_AFTER_S[0] + Math.random() * (SILENT_AFTER_S[1] - SILENT_AFTER_S[0])) * 1000)
        : null,
    });
  }
  const cfg = {
    redisUrl: redisSrv.url,
    ttlS: TTL_S,
    toolMinS: 1,
    toolMaxS: 5,
    opEveryS: OP_EVERY_S,
    jobEveryS: JOB_EVERY_S,
    resources: Math.max(4, Math.round(total / 4)),
    total,
    hooksFile,
    worktree: project,
  };
  const parts = slices.map((sessions) => ({
    sessions,
    cfg: { ...cfg, role: 'sessions', jobEveryS: HOOK_DRIVER ? 0 : cfg.jobEveryS },
  }));
  if (HOOK_DRIVER && cfg.jobEveryS > 0)
    parts.push({ sessions: slices.flat(), cfg: { ...cfg, role: 'hooks' } });
  const drivers = parts.map(({ sessions, cfg }) => {
    const child = fork(path.join(__dirname, 'driver.js'), [], {
      cwd: project,
      env: { ...process.env, REDIS_URL: redisSrv.url },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    cleanup.push(() => child.exitCode === null && child.kill('SIGKILL'));
    const result = new Promise((resolve, reject) => {
      child.on('message', (m) => m.type === 'result' && resolve(m));
      // 'close', not 'exit': by then every IPC message it sent has been delivered.
      child.on('close', (code) => reject(new Error(`driver exited ${code} before reporting`)));
    });
    result.catch(() => undefined);
    child.send({ type: 'start', cfg, sessions });
    return { child, sessions, result };
  });
  const tStart = Date.now();

  // Steady window: after the ramp, to the end of the load.
  await sleep(RAMP_S * 1000);
  const cpuA = cpuOf();
  const cmdA = await commandStats(redis);
  const connA = Number(/total_connections_received:(\d+)/.exec(await redis.info('stats'))[1]);
  const tA = Date.now();
  const loadMid = [];

  // The real `coord` CLI, a small sample in the middle of the load, beside `node -e 0`.
  const cliEnv = { ...env, COORD_SESSION_ID: 'fleet-cli', COORD_PID: '99999' };
  const coordBin = path.join(root, 'bin', 'coord');
  const cliMs = { node: [], coord: [] };
  const expectedCli = {};
  const cliOps = [['register'], ['heartbeat'], ['lock', 'cli-res'], ['unlock', 'cli-res']];
  // Only with samples to take: a registered session that never heartbeats would be culled as live.
  if (CLI_SAMPLE > 0) {
    await execMs(coordBin, ['register'], cliEnv);
    for (const ph of ['pre', 'post']) expectedCli[`fleet-cli|register|${ph}`] = 1;
  }
  const cliUntil = tStart + SECONDS * 1000 - 5000;
  for (let i = 0; i < CLI_SAMPLE && Date.now() < cliUntil; i++) {
    cliMs.node.push((await execMs(process.execPath, ['-e', '0'], {})).ms);
    const argv = cliOps[1 + (i % 3)];
    const r = await execMs(coordBin, argv, cliEnv);
    cliMs.coord.push(r.ms);
    for (const ph of ['pre', 'post'])
      expectedCli[`fleet-cli|${argv[0]}|${ph}`] = (expectedCli[`fleet-cli|${argv[0]}|${ph}`] ?? 0) + 1;
    await sleep(1000);
    if (i % 5 === 0) loadMid.push(os.loadavg()[0]);
  }
  while (Date.now() < tStart + SECONDS * 1000) {
    loadMid.push(os.loadavg()[0]);
    await sleep(Math.min(5000, tStart + SECONDS * 1000 - Date.now()));
  }
  // When the fan-out PUBLISHed each envelope: the replay entry it XADDs in the same script gets
  // the Redis clock of that moment as its id (the stream keeps the last FANOUT_REPLAY_MAXLEN).
  const publishMs = [];
  for (const [id, fields] of await redis.xrange(ks.coordReplay, String(tA), '+')) {
    const data = fields[fields.indexOf('data') + 1];
    publishMs.push(Number(id.split('-')[0]) - Date.parse(JSON.parse(data).ts));
  }
  const cpuB = cpuOf();
  const cmdB = await commandStats(redis);
  const connB = Number(/total_connections_received:(\d+)/.exec(await redis.info('stats'))[1]);
  const tB = Date.now();
  const mem1 = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))[1]);
  const families = await memoryByFamily(redis);
  const loadEnd = loadavg();

  // Stop the drivers: no new ops; in-flight ones finish and the drivers report.
  for (const d of drivers) d.child.send({ type: 'stop' });
  const results = await Promise.all(drivers.map((d) => d.result));
  log(`load done in ${((Date.now() - tStart) / 1000).toFixed(1)} s; draining`);

  // Drain: every silent session culled (or past the time it should have been) and the archive
  // caught up with what the producers added to each archived stream.
  const lastBeat = {};
  for (const r of results) for (const [id, s] of Object.entries(r.silent)) lastBeat[id] = s.lastBeatMs;
  const cullDeadline =
    Math.max(...Object.values(lastBeat), Date.now()) + TTL_S * 1000 + 3 * CULL_INTERVAL_MS + 5000;
  const sqliteFile = path.join(dataDir, 'archive', 'archive.sqlite');
  const db = new Database(sqliteFile, { readonly: true, fileMustExist: true });
  const added = async (stream) => {
    const info = await redis.call('XINFO', 'STREAM', stream).catch(() => null);
    if (!info) return 0;
    return Number(info[info.indexOf('entries-added') + 1]);
  };
  const streams = { coordIngest: ks.coordIngest, coordEvents: ks.coordEvents, jobEvents: ks.jobEvents };
  const jobsSubmitted = results.reduce(
    (a, r) => a + Object.values(r.jobsFired).reduce((x, y) => x + y, 0),
    0,
  );
  const terminal = `'${TERMINAL_JOB_STATUSES.join("','")}'`;
  const jobsFinishedQuery = db.prepare(
    `SELECT COUNT(DISTINCT json_extract(data, '$.job_id')) AS n FROM events
     WHERE stream = ? AND json_extract(data, '$.status') IN (${terminal})`,
  );
  const archiveBehind = async () => {
    let behind = 0;
    for (const name of Object.values(streams)) {
      const n = db.prepare('SELECT COUNT(*) AS n FROM events WHERE stream = ?').get(name).n;
      behind += Math.max(0, (await added(name)) - n);
    }
    return behind;
  };
  let caughtUp;
  for (;;) {
    const alive = silentIds.size ? await redis.zmscore(ks.coordKey('sessions'), ...silentIds) : [];
    const silentLeft = alive.filter((x) => x !== null).length;
    const behind = await archiveBehind();
    const jobsLeft = jobsSubmitted - jobsFinishedQuery.get(ks.jobEvents).n;
    caughtUp = behind === 0 && jobsLeft <= 0;
    if ((silentLeft === 0 && caughtUp) || Date.now() > cullDeadline) break;
    await sleep(500);
  }
  // Every session expires a TTL after the load ends, and the sentinel puts a live view of each
  // cull on the ingest stream: stop it, let the archive catch up, and only then count what the
  // ingest stream accepted, so the analysis below (which counts the culls it finds archived)
  // and that count see the same culls.
  await stopProcess(procs.find((p) => p.name === 'sentinel-subscriber').child);
  for (const settle = Date.now() + 15_000; Date.now() < settle && (await archiveBehind()) > 0;)
    await sleep(250);
  const accepted = await added(ks.coordIngest);
  const redisPerOp = await calibrate(redisSrv.url, redisSrv.pid, ks, TTL_S * 1000);

  // ---- analysis -------------------------------------------------------------------------------
  const merged = (key) => results.flatMap((r) => r[key]);
  const lat = {};
  for (const r of results) for (const [op, xs] of Object.entries(r.latency)) (lat[op] ??= []).push(...xs);
  const allOps = Object.values(lat).flat();
  const exits = {};
  for (const r of results) for (const [k, n] of Object.entries(r.exits)) exits[k] = (exits[k] ?? 0) + n;
  const expected = { ...expectedCli };
  for (const r of results)
    for (const [k, n] of Object.entries(r.expected)) expected[k] = (expected[k] ?? 0) + n;

  // Archive: op envelopes, culls, jobs.
  const archived = {};
  const archiveMs = [];
  for (const row of db
    .prepare('SELECT data, archived_ms FROM events WHERE stream = ?')
    .iterate(ks.coordIngest)) {
    const e = JSON.parse(row.data);
    const k = `${e.fields.session}|${e.fields.op}|${e.fields.phase}`;
    archived[k] = (archived[k] ?? 0) + 1;
    archiveMs.push(row.archived_ms - Date.parse(e.ts));
  }
  const culls = {};
  for (const row of db.prepare('SELECT data FROM events WHERE stream = ?').iterate(ks.coordEvents)) {
    const e = JSON.parse(row.data);
    if (e.tx_kind === 'session.dereg' && e.payload?.reason === 'ttl-expired')
      (culls[e.session_id] ??= []).push(Date.parse(e.ts));
    // A state change nobody typed (a cull, an evicted lock) also reaches the live views: the
    // sentinel puts its envelope on the ingest stream, once per event.
    const live = liveEnvelope(e, { host: '', pid: 0 });
    if (live) {
      const k = `${live.fields.session}|${live.fields.op}|${live.fields.phase}`;
      expected[k] = (expected[k] ?? 0) + 1;
    }
  }
  const expectedTotal = Object.values(expected).reduce((a, b) => a + b, 0);
  const jobsDone = {};
  const jobStatus = {};
  for (const row of db.prepare('SELECT data FROM events WHERE stream = ?').iterate(ks.jobEvents)) {
    const e = JSON.parse(row.data);
    jobStatus[e.job_id] = e.status;
    const tag = (e.tags ?? []).find((t) => t.startsWith('session:'));
    if (tag && e.status === 'succeeded') (jobsDone[tag.slice(8)] ??= new Set()).add(e.job_id);
  }
  const deadLetters = {};
  for (const name of Object.values(streams).concat([ks.sentinelObservations, ks.telemetryEvents])) {
    const n = await redis.xlen(ks.deadLetter(name));
    if (n) deadLetters[name] = n;
  }
  db.close();

  // Envelopes: `expected` counts the pre and post of every op run; the producer drops an envelope
  // only when its XADD misses the bound (fire-and-forget, by design), so what Redis accepted
  // (entries-added of the ingest stream) is what the pipeline owes. Pipeline loss: accepted but
  // not on pub/sub or not archived; duplicates: more of a (session, op, phase) than were written.
  const diff = (got) => {
    let extra = 0;
    let total = 0;
    const examples = [];
    for (const [k, g] of Object.entries(got)) {
      total += g;
      if (g > (expected[k] ?? 0)) {
        extra += g - (expected[k] ?? 0);
        if (examples.length < 5) examples.push(`${k} x${g - (expected[k] ?? 0)}`);
      }
    }
    return { missing: Math.max(0, accepted - total), extra, examples };
  };
  const pubsubLoss = diff(onPubsub);
  const archiveLoss = diff(archived);
  const lateness = [];
  let silentNotCulled = 0;
  let silentCulledTwice = 0;
  let liveCulled = 0;
  for (const id of silentIds) {
    const c = culls[id] ?? [];
    if (!c.length) silentNotCulled++;
    if (c.length > 1) silentCulledTwice++;
    // lastBeatMs is 0 when the session's register never answered (Redis unavailable): unknown.
    if (c.length && lastBeat[id] > 0) lateness.push(c[0] - (lastBeat[id] + TTL_S * 1000));
  }
  // After the load every session is quiet: only a cull while it was still heartbeating is a loss.
  for (const [id, c] of Object.entries(culls)) if (!silentIds.has(id) && c[0] <= tB) liveCulled++;
  const jobsSucceeded = Object.values(jobsDone).reduce((a, s) => a + s.size, 0);
  const jobsNotDone = Object.values(jobStatus).filter((s) => s !== 'succeeded').length;
  const jobErrors = merged('jobErrors');

  const windowS = (tB - tA) / 1000;
  const perK = total / 1000;
  const cpu = {};
  for (const p of procs) {
    const s = (cpuB[p.name] - cpuA[p.name]) / 1000;
    const idleCores = (idle1[p.name] - idle0[p.name]) / 1000 / idleS;
    cpu[p.name] = {
      cpuS: s,
      cores: s / windowS,
      idleCores,
      perKPerMin: s / perK / (windowS / 60),
      // What the sessions add above the same-run idle baseline: the figure that scales with N.
      marginalPerKPerMin: (Math.max(0, s / windowS - idleCores) * 60) / perK,
    };
  }
  const serviceCores = procs
    .filter((p) => p.name !== 'redis-server')
    .reduce((a, p) => a + cpu[p.name].cores, 0);
  // Where Redis spends its time in the window: per command (usec inside the command), the rest
  // (network, connection set-up and tear-down, AOF, expiry) is the difference to its /proc CPU.
  const redisCommands = Object.entries(cmdB)
    .map(([cmd, b]) => ({
      cmd,
      callsPerS: r1((b.calls - (cmdA[cmd]?.calls ?? 0)) / windowS),
      cores: (b.usec - (cmdA[cmd]?.usec ?? 0)) / 1e6 / windowS,
    }))
    .filter((c) => c.cores > 0)
    .sort((a, b) => b.cores - a.cores);
  const commandCores = redisCommands.reduce((a, c) => a + c.cores, 0);
  const serviceIdleCores = procs
    .filter((p) => p.name !== 'redis-server')
    .reduce((a, p) => a + cpu[p.name].idleCores, 0);
  const driverCpuS = results.reduce((a, r) => a + (r.cpu.user + r.cpu.system) / 1e6, 0);
  const envP99 = Math.max(pct(pubsubMs, 99) ?? Infinity, pct(archiveMs, 99) ?? Infinity);
  const producerDrops = expectedTotal - accepted;
  // Which envelopes the producers dropped: written (expected) but not archived, by (session, op, phase).
  const droppedExamples = Object.entries(expected)
    .filter(([k, n]) => (archived[k] ?? 0) < n)
    .slice(0, 5)
    .map(([k, n]) => `${k} x${n - (archived[k] ?? 0)}`);
  const lossCount =
    producerDrops +
    pubsubLoss.missing +
    pubsubLoss.extra +
    archiveLoss.missing +
    archiveLoss.extra +
    silentNotCulled +
    silentCulledTwice +
    liveCulled +
    (jobsSubmitted - jobsSucceeded) +
    jobErrors.length +
    Object.values(deadLetters).reduce((a, b) => a + b, 0);
  const noLoss = lossCount === 0;
  const opP99 = pct(allOps, 99);
  const loadAvg = {
    start: load0,
    steadyMean1m: r2(loadMid.reduce((a, b) => a + b, 0) / (loadMid.length || 1)),
    end: loadEnd,
  };

  const result = {
    benchmark: 'fleet',
    sessions: total,
    seconds: SECONDS,
    ttlS: TTL_S,
    cpus: os.cpus().length,
    loadAvg,
    ops: {
      count: allOps.length,
      perSecond: r1(allOps.length / ((tB - tStart) / 1000)),
      p50Ms: r2(pct(allOps, 50)),
      p99Ms: r2(opP99),
      byOp: Object.fromEntries(
        Object.entries(lat).map(([op, xs]) => [
          op,
          { n: xs.length, p50Ms: r2(pct(xs, 50)), p99Ms: r2(pct(xs, 99)) },
        ]),
      ),
      exits,
    },
    cli: {
      n: cliMs.coord.length,
      coordP50Ms: r1(pct(cliMs.coord, 50)),
      coordP99Ms: r1(pct(cliMs.coord, 99)),
      nodeP50Ms: r1(pct(cliMs.node, 50)),
    },
    envelopes: {
      expected: expectedTotal,
      accepted,
      producerDrops,
      droppedExamples,
      publishP50Ms: pct(publishMs, 50),
      publishP99Ms: pct(publishMs, 99),
      publishSampled: publishMs.length,
      pubsubP50Ms: pct(pubsubMs, 50),
      pubsubP99Ms: pct(pubsubMs, 99),
      archiveP50Ms: pct(archiveMs, 50),
      archiveP99Ms: pct(archiveMs, 99),
      pubsubLoss,
      archiveLoss,
    },
    culls: {
      silent: silentIds.size,
      culled: silentIds.size - silentNotCulled,
      notCulled: silentNotCulled,
      culledTwice: silentCulledTwice,
      heartbeatingCulled: liveCulled,
      latenessP50Ms: pct(lateness, 50),
      latenessP99Ms: pct(lateness, 99),
      cullIntervalMs: CULL_INTERVAL_MS,
    },
    jobs: {
      submitted: jobsSubmitted,
      succeeded: jobsSucceeded,
      notSucceeded: jobsNotDone,
      errors: jobErrors.slice(0, 5),
      submitP50Ms: r1(pct(merged('jobLatency'), 50)),
      submitP99Ms: r1(pct(merged('jobLatency'), 99)),
    },
    deadLetters,
    cpu: {
      windowS: r1(windowS),
      byProcess: cpu,
      serviceCores: r2(serviceCores),
      serviceIdleCores: r2(serviceIdleCores),
      driverCores: r2(driverCpuS / ((tB - tStart) / 1000)),
    },
    drivers: results.map((r) => ({ role: r.role, loopP99Ms: r1(r.loopP99Ms), loopMaxMs: r1(r.loopMaxMs) })),
    subscriberLoopP99Ms: r1(ownLoop.percentile(99) / 1e6),
    redis: {
      cores: r2(cpu['redis-server'].cores),
      inCommandsCores: r2(commandCores),
      connectionsPerS: r1((connB - connA) / windowS),
      perOp: redisPerOp,
      topCommands: redisCommands.slice(0, 8).map((c) => ({ ...c, cores: r2(c.cores) })),
    },
    redisMemory: {
      deltaBytes: mem1 - mem0,
      perSessionBytes: Math.round((mem1 - mem0) / total),
      families: families.slice(0, 16).map(([fam, f]) => ({ family: fam, keys: f.keys, bytes: f.bytes })),
    },
    drained: caughtUp,
    targets: {
      opP99: { target: TARGETS.opP99Ms, value: r2(opP99), met: opP99 <= TARGETS.opP99Ms },
      envelopeP99: { target: TARGETS.envelopeP99Ms, value: envP99, met: envP99 <= TARGETS.envelopeP99Ms },
      noLoss: { target: 0, met: noLoss },
      serviceCores: {
        target: TARGETS.serviceCores,
        value: r2(serviceCores),
        met: serviceCores <= TARGETS.serviceCores,
      },
    },
  };
  print(result);
  // The four targets of issue #15 §3, through the runner's one reporting path (npm run bench).
  const bench = 'fleet';
  const at = `${total} sessions`;
  report({
    bench,
    name: `coord op p99, ${at}`,
    value: r2(opP99),
    unit: 'ms',
    target: `<= ${TARGETS.opP99Ms}`,
  });
  report({
    bench,
    name: `envelope end to end p99 (pub/sub and archive), ${at}`,
    value: envP99,
    unit: 'ms',
    target: `<= ${TARGETS.envelopeP99Ms}`,
  });
  report({
    bench,
    name: `loss (envelopes, culls, jobs, dead letters), ${at}`,
    value: lossCount,
    unit: 'lost',
    target: '<= 0',
  });
  report({
    bench,
    name: `the five services together, ${at}`,
    value: r2(serviceCores),
    unit: 'cores',
    target: `<= ${TARGETS.serviceCores}`,
    note: `CPU-s per 1000 sessions per minute: ${Object.entries(cpu)
      .map(([n, c]) => `${n} ${r2(c.perKPerMin)}`)
      .join(', ')}`,
  });
  if (JSON_OUT) console.log(JSON.stringify(result));

  await sub.quit();
  await redis.quit();
  for (const p of procs) if (p.child.kill) await stopProcess(p.child);
  process.exit(0); // the exit handler stops the private Redis and removes the data directory
}

function print(r) {
  const met = (t) => (t.met ? 'met' : 'NOT met');
  const t = r.targets;
  log(
    `\nload average: start ${r.loadAvg.start.join(' ')}, steady (1 min, mean) ${r.loadAvg.steadyMean1m}, end ${r.loadAvg.end.join(' ')}`,
  );
  log(`\n| figure | value | target | |`);
  log('|---|---|---|---|');
  log(
    `| coord op p50 / p99 (in-process runCoord, ${fmt(r.ops.count)} ops, ${r.ops.perSecond}/s) | ${r.ops.p50Ms} / ${r.ops.p99Ms} ms | p99 <= 20 ms | ${met(t.opP99)} |`,
  );
  log(
    `| envelope op -> PUBLISH (replay entry id, last ${fmt(r.envelopes.publishSampled)}) p50 / p99 | ${r.envelopes.publishP50Ms} / ${r.envelopes.publishP99Ms} ms | | |`,
  );
  log(
    `| envelope op -> pub/sub subscriber p50 / p99 | ${r.envelopes.pubsubP50Ms} / ${r.envelopes.pubsubP99Ms} ms | p99 <= 100 ms | ${met(t.envelopeP99)} |`,
  );
  log(
    `| envelope op -> archive row p50 / p99 | ${r.envelopes.archiveP50Ms} / ${r.envelopes.archiveP99Ms} ms | p99 <= 100 ms | (same) |`,
  );
  log(
    `| cull lateness past TTL p50 / p99 (TTL ${r.ttlS} s, cull every ~${r.culls.cullIntervalMs} ms) | ${r.culls.latenessP50Ms} / ${r.culls.latenessP99Ms} ms | | |`,
  );
  log(
    `| the 5 services together (idle, same run: ${r.cpu.serviceIdleCores}) | ${r.cpu.serviceCores} core | <= 0.5 core | ${met(t.serviceCores)} |`,
  );
  log(
    `| loss (envelopes, culls, jobs, dead letters) | ${t.noLoss.met ? 'none' : 'SEE BELOW'} | none | ${met(t.noLoss)} |`,
  );
  log(
    `\nreal \`coord\` CLI processes (${r.cli.n}, during the load): p50 ${r.cli.coordP50Ms} ms, p99 ${r.cli.coordP99Ms} ms; same-run \`node -e 0\` p50 ${r.cli.nodeP50Ms} ms`,
  );
  log(
    `\nper op (in-process): ${Object.entries(r.ops.byOp)
      .map(([op, o]) => `${op} n=${o.n} p50 ${o.p50Ms} p99 ${o.p99Ms}`)
      .join('; ')}`,
  );
  log(
    `exit codes: ${Object.entries(r.ops.exits)
      .map(([k, n]) => `${k}: ${n}`)
      .join(', ')}`,
  );
  log(`\nCPU over the steady window (${r.cpu.windowS} s), per 1 000 sessions per minute:`);
  log(
    '| process | CPU-s / 1 000 sessions / min | of which above idle | cores under load | cores idle (same run) |',
  );
  log('|---|---|---|---|---|');
  for (const [name, c] of Object.entries(r.cpu.byProcess))
    log(
      `| ${name} | ${r2(c.perKPerMin)} | ${r2(c.marginalPerKPerMin)} | ${r2(c.cores)} | ${r2(c.idleCores)} |`,
    );
  log(
    `drivers (the agents' side, not coordbus): ${r.cpu.driverCores} core; event-loop delay p99 ${r.drivers.map((d) => `${d.loopP99Ms} (${d.role})`).join(', ')} ms (the subscriber's: ${r.subscriberLoopP99Ms} ms)`,
  );
  log(
    `\nRedis: ${r.redis.cores} core over the window, ${r.redis.inCommandsCores} of it inside commands; ` +
      `${r.redis.connectionsPerS} new connections/s (one per coord op, as the CLI does); top commands: ` +
      r.redis.topCommands.map((c) => `${c.cmd} ${c.callsPerS}/s ${c.cores} core`).join(', '),
  );
  log(
    `Redis CPU per unit (after the load, /proc): heartbeat script ${r.redis.perOp.heartbeatUs} µs, ` +
      `send with its event and consumers ${r.redis.perOp.sendUs} µs, one connection ${r.redis.perOp.connectionUs} µs`,
  );
  log(
    `\nRedis memory: +${fmt(r.redisMemory.deltaBytes)} B = ${fmt(r.redisMemory.perSessionBytes)} B per session; by key family:`,
  );
  for (const f of r.redisMemory.families)
    log(`  ${f.family.padEnd(44)} ${String(f.keys).padStart(6)} keys ${fmt(f.bytes).padStart(12)} B`);
  log(
    `\nenvelopes: ${fmt(r.envelopes.expected)} sent (coord ops and the sentinel's live views of culls), ${fmt(r.envelopes.accepted)} accepted by Redis (${r.envelopes.producerDrops} dropped at the producer's bound${r.envelopes.droppedExamples.length ? `: ${r.envelopes.droppedExamples.join(', ')}` : ''}); pub/sub missing ${r.envelopes.pubsubLoss.missing} extra ${r.envelopes.pubsubLoss.extra}; archive missing ${r.envelopes.archiveLoss.missing} extra ${r.envelopes.archiveLoss.extra}` +
      (r.envelopes.archiveLoss.examples.length
        ? ` (e.g. ${r.envelopes.archiveLoss.examples.join(', ')})`
        : ''),
  );
  log(
    `culls: ${r.culls.culled}/${r.culls.silent} silent sessions culled, ${r.culls.notCulled} not culled, ${r.culls.culledTwice} twice, ${r.culls.heartbeatingCulled} heartbeating sessions culled`,
  );
  log(
    `jobs: ${r.jobs.submitted} queued by Stop hooks, ${r.jobs.succeeded} succeeded, ${r.jobs.notSucceeded} in another state, errors ${JSON.stringify(r.jobs.errors)}; hooks run p50 ${r.jobs.submitP50Ms} ms p99 ${r.jobs.submitP99Ms} ms`,
  );
  if (Object.keys(r.deadLetters).length) log(`dead letters: ${JSON.stringify(r.deadLetters)}`);
  if (!r.drained)
    log('WARNING: the archive had not caught up (or silent sessions were still alive) at the drain deadline');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
