import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { Client } from 'pg';
import {
  CoordEvent,
  CoordOpEnvelope,
  EnvelopeCodec,
  JobEvent,
  Keyspace,
  newUlid,
  Schemas,
  SentinelObservation,
  TelemetryEvent,
  TERMINAL_JOB_STATUSES,
} from '@coordbus/envelope';
import {
  metricSum,
  PgProxy,
  seededRandom,
  ServiceProcess,
  startService,
  streamDrained,
  streamGroups,
  TestRedisServer,
  testNamespace,
  waitFor,
} from '@coordbus/testing';
import { liveEnvelope } from '@coordbus/coord';
import { pgConnectionConfig } from '../apps/telemetry-archivist/src/store/postgres-archive-store';
import { COORD, COORDBUS, run, RunResult } from './coord-helpers';

/**
 * Issue #8 §3 — replicas under faults, the whole system as real processes.
 *
 * Its own Redis (AOF on, so it can be restarted), 2 replicas of every consumer service (3
 * sentinels), one log-tailer, a simulated fleet of sessions driving the real `bin/coord` and
 * `coordbus jobs run`, and a log file growing with headroom STAGE_TIMINGS lines. Meanwhile the
 * test SIGKILLs a random replica of each service (and starts a new process in its place),
 * restarts Redis once per cycle (SIGTERM: AOF is fsynced on shutdown, nothing acked is lost) and
 * SIGSTOPs a replica for three times the reclaim idle time. Once per cycle it also takes the archive
 * database away (the archivists reach PostgreSQL through a proxy the test cuts) and fills Redis
 * (`maxmemory` below what it uses, `noeviction`: every write that would grow it is refused with
 * OOM): both are outages to wait out, not-ready meanwhile, never a reason to dead-letter (issue 13
 * §1). At the end it waits (bounded) for the system to drain and checks the promises the system
 * makes exactly:
 *
 *  - every op envelope the fleet's coord calls produced (a `pre` and a `post` per call) and every
 *    entry of every durable stream is in the archive exactly once;
 *  - every ingest envelope was fanned out to the replay stream exactly once;
 *  - every coord event got exactly one sentinel observation;
 *  - no session that kept heartbeating was culled; every session that stopped was culled exactly
 *    once and its lock released exactly once;
 *  - every job reached exactly one terminal status (none lost, none doubled);
 *  - nothing was dead-lettered, and /readyz said 503 during the outages and 200 after them;
 *  - every breaching log line produced exactly one telemetry event, no other line produced one;
 *  - no consumer group holds pending entries or lags behind.
 *
 * `SOAK_SECONDS` (default 50) is the length of the workload phase; each fault cycle lasts about
 * 60 s, so a longer soak repeats the cycle (a Redis restart, a database outage and a full Redis
 * per cycle). `SOAK_SEED`
 * replays the same random choices. Run `npm run build` first.
 */
const SOAK_SECONDS = Number(process.env.SOAK_SECONDS ?? 50);
const SEED = Number(process.env.SOAK_SEED ?? Date.now() % 1_000_000);
/**
 * How long a service may take to log its start line. Eleven Nest services boot at once; at load 25
 * on 2 cores each got about 1 s of CPU a minute and the first one missed a 60 s bound.
 */
const START_MS = 180_000;
jest.setTimeout(SOAK_SECONDS * 1000 + 240_000 + START_MS);

const codec = new EnvelopeCodec();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://127.0.0.1:5432/test';

/**
 * Session liveness. Keepers heartbeat every 2–3 s when the machine is idle, but on a loaded
 * 2-core machine (ten services plus the fleet's node processes) one coord call can take seconds,
 * and the fleet waits at the gate while Redis restarts or is full: gaps of 12 s were measured at
 * load 2–4, 21.6 s at load 12 (other work beside the soak). The TTL leaves room for that, so a
 * keeper culled is a real fault.
 */
const SESSION_TTL_S = 30;
/** How long the archive database is cut, and how long Redis stays full. */
const PG_DOWN_MS = 5000;
const REDIS_FULL_MS = 3000;
/** Reclaim idle time of every consumer (transport, fan-out, archivist, sentinel). */
const RECLAIM_MS = 2000;
const KEEPERS = 10;
const STOPPERS = 6;
const BREACH_MS = 500;

type ConsumerService = 'fanout-publisher' | 'sentinel-subscriber' | 'job-coordinator' | 'telemetry-archivist';
const CONSUMERS: ConsumerService[] = [
  'fanout-publisher',
  'sentinel-subscriber',
  'job-coordinator',
  'telemetry-archivist',
];
const REPLICAS: Record<ConsumerService, number> = {
  'fanout-publisher': 2,
  'sentinel-subscriber': 3,
  'job-coordinator': 2,
  'telemetry-archivist': 2,
};

interface CoordCall {
  session: string;
  op: string;
  pid: number;
  code: number | null;
  error?: string;
  startedAt: number;
  endedAt?: number;
}

interface Figures {
  kills: string[];
  pauses: string[];
  redisRestarts: number;
  /** Per outage: which processes answered /readyz 503 during it, and how long all took to be 200 again. */
  pgOutages: Array<{ notReady: string[]; readyAgainMs: number }>;
  redisFull: Array<{ notReady: string[]; readyAgainMs: number; maxmemory: number }>;
}

/** `key -> count` of a list of keys. */
function tally(keys: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}

/** The keys whose count differs between `expected` and `actual`, with both counts (empty when equal). */
function multisetDiff(
  expected: string[],
  actual: string[],
): Array<{ key: string; expected: number; actual: number }> {
  const e = tally(expected);
  const a = tally(actual);
  const out: Array<{ key: string; expected: number; actual: number }> = [];
  for (const key of new Set([...e.keys(), ...a.keys()])) {
    if ((e.get(key) ?? 0) !== (a.get(key) ?? 0))
      out.push({ key, expected: e.get(key) ?? 0, actual: a.get(key) ?? 0 });
  }
  return out.slice(0, 20);
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
/** A headroom proxy STAGE_TIMINGS line (the format of apps/log-tailer/src/observers/__fixtures__). */
function stageLine(seq: number, totalMs: number): string {
  const d = new Date();
  const asctime = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())},${pad(d.getMilliseconds(), 3)}`;
  return `${asctime} - headroom.proxy - INFO - [hr_${seq}] STAGE_TIMINGS {"event": "stage_timings", "path": "anthropic_messages", "request_id": "soak-${seq}", "session_id": "soak", "stages": {"pre_upstream_wait": 0.001, "read_request_json": 1.0, "deep_copy": 0.1, "compression_first_stage": ${(totalMs - 1.1).toFixed(3)}, "memory_context": null, "upstream_connect": null, "upstream_first_byte": null, "total_pre_upstream": ${totalMs}}}\n`;
}

describe('soak: replicas under faults (whole system, real processes)', () => {
  const redis = new TestRedisServer({ appendonly: true });
  const namespace = testNamespace('soak');
  const keyspace = new Keyspace(namespace);
  const pgSchema = `soak_${newUlid().toLowerCase()}`;
  // The archivists' PostgreSQL, which the test takes away and gives back (same port).
  const pgProxy = new PgProxy(PG_URL);
  const dir = mkdtempSync(join(tmpdir(), 'coordbus-soak-'));
  const logPath = join(dir, 'logs', 'headroom.log');
  let client: Redis;
  const everyProcess: ServiceProcess[] = [];
  // The sentinel writes live-view envelopes (culls, releases nobody typed) under its own pid.
  const sentinelPids = new Set<number>();
  const replicas: Record<ConsumerService, ServiceProcess[]> = {
    'fanout-publisher': [],
    'sentinel-subscriber': [],
    'job-coordinator': [],
    'telemetry-archivist': [],
  };
  let tailer: ServiceProcess | undefined;
  // Ends the fleet's loops: when the workload phase is over, and in afterAll however the test
  // ended (a log write into the removed directory would crash jest and hide the failure).
  let stopWorkload = false;
  const tailers: ServiceProcess[] = [];
  // Two generators: the fault schedule replays from the seed whatever the fleet's timing was.
  const random = seededRandom(SEED);
  const faultRandom = seededRandom(SEED + 1);
  const pick = <T>(xs: readonly T[], rnd = random): T => xs[Math.floor(rnd() * xs.length)];

  const commonEnv = (): NodeJS.ProcessEnv => ({
    REDIS_URL: redis.url,
    COORDBUS_NAMESPACE: namespace,
    STREAM_RECLAIM_IDLE_MS: String(RECLAIM_MS),
    COORD_SESSION_TTL: String(SESSION_TTL_S),
  });
  const serviceEnv: Record<ConsumerService, () => NodeJS.ProcessEnv> = {
    'fanout-publisher': () => ({
      FANOUT_RECLAIM_IDLE_MS: String(RECLAIM_MS),
      // Ack-aware trimming of the ingest stream runs under the faults too.
      FANOUT_TRIM_INTERVAL_MS: '1000',
    }),
    'sentinel-subscriber': () => ({
      SENTINEL_CLAIM_IDLE_MS: String(RECLAIM_MS),
      SENTINEL_CULL_INTERVAL_MS: '500',
      SENTINEL_BLOCK_MS: '500',
    }),
    'job-coordinator': () => ({
      JOBS_CONCURRENCY: '2',
      JOBS_KILL_GRACE: '1s',
      JOBS_LOCK_DURATION: '3s',
      JOBS_STALLED_INTERVAL: '1s',
      JOBS_RECONCILE_INTERVAL: '2s',
      JOBS_STALE_RUNNING_AFTER: '15s',
      JOBS_PRUNE_INTERVAL: '0',
      JOBS_SHUTDOWN_GRACE: '1s',
    }),
    // Several archivist replicas share PostgreSQL (the documented multi-replica setup): SQLite is
    // one writer, and a SIGSTOPped replica holding its write lock would stall the other one.
    'telemetry-archivist': () => ({
      DATABASE_URL: pgProxy.url,
      ARCHIVIST_PG_SCHEMA: pgSchema,
      ARCHIVIST_DATA_DIR: join(dir, 'archive'),
      ARCHIVIST_RECLAIM_IDLE_MS: String(RECLAIM_MS),
      ARCHIVIST_BATCH_SIZE: '200',
    }),
  };

  const startReplica = async (name: ConsumerService): Promise<ServiceProcess> => {
    const svc = await startService(name, { ...commonEnv(), ...serviceEnv[name]() }, START_MS);
    everyProcess.push(svc);
    replicas[name].push(svc);
    if (name === 'sentinel-subscriber') sentinelPids.add(svc.child.pid!);
    if (name === 'job-coordinator')
      await waitFor(
        () => svc.lines.some((l) => l.includes('job worker started')),
        'the job worker to start',
        30_000,
      );
    return svc;
  };
  const startTailer = async (): Promise<ServiceProcess> => {
    const svc = await startService(
      'log-tailer',
      { ...commonEnv(), TAILER_CONFIG: join(dir, 'tailer.yaml') },
      START_MS,
    );
    everyProcess.push(svc);
    tailer = svc;
    tailers.push(svc);
    return svc;
  };

  beforeAll(async () => {
    await redis.start();
    await pgProxy.start();
    client = new Redis(redis.url, { maxRetriesPerRequest: null });
    mkdirSync(join(dir, 'logs'));
    writeFileSync(logPath, '');
    writeFileSync(
      join(dir, 'tailer.yaml'),
      `reconcile_ms: 1000\ntargets:\n  - path: ${logPath}\n    source: headroom\n    event: headroom.overhead\n    threshold_ms: ${BREACH_MS}\n    quiet_ms: 1500\n    from_start: true\n`,
    );
    // Build coord's hot-path bundle once, before many processes would race to.
    await run(COORD, ['help']);
  });

  afterAll(async () => {
    stopWorkload = true;
    for (const p of everyProcess) p.child.kill('SIGCONT');
    await Promise.all(everyProcess.map((p) => p.stop('SIGKILL').catch(() => undefined)));
    client?.disconnect();
    await redis.dispose();
    await pgProxy.cut();
    const pg = new Client(pgConnectionConfig(PG_URL));
    await pg.connect();
    await pg.query(`DROP SCHEMA IF EXISTS "${pgSchema}" CASCADE`);
    await pg.end();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loses nothing, doubles nothing and culls exactly the silent sessions across SIGKILL, SIGSTOP, a Redis restart, the database down and Redis full', async () => {
    const t0 = Date.now();
    console.log(
      `soak: seed ${SEED} (SOAK_SEED replays it), workload ${SOAK_SECONDS} s, namespace ${namespace}`,
    );
    await Promise.all([
      ...CONSUMERS.flatMap((name) => Array.from({ length: REPLICAS[name] }, () => startReplica(name))),
      startTailer(),
    ]);
    const tStarted = Date.now();

    // ---- the fleet ------------------------------------------------------------------------
    // Coord ops and job submissions wait at this gate while Redis restarts or is full: a coord call
    // whose envelope XADD races the shutdown (or meets OOM) may legitimately lose it
    // (fire-and-forget, bounded), and a coord op or job submission fails with Unavailable (exit 5).
    // Both are documented behaviour, not what this test is about; pausing the callers keeps the
    // fleet's own ledger exact. The services and the log writer keep going.
    let gate: Promise<void> | undefined;
    let openGate = () => {};
    let inflight = 0;
    const passGate = async () => {
      while (gate) await gate;
    };

    const calls: CoordCall[] = [];
    const coordEnv = (session: string): NodeJS.ProcessEnv => ({
      ...commonEnv(),
      COORD_SESSION_ID: session,
      CLAUDE_SESSION_ID: '',
      COORD_REDIS_TIMEOUT: '10',
      // Each call waits for its post envelope at most this long (default 0.25 s). On this loaded
      // 2-core machine the default can legitimately drop a post envelope; the ledger must be exact.
      LOGS_COORD_REDIS_TIMEOUT: '10',
    });
    const coord = async (session: string, args: string[]): Promise<RunResult | undefined> => {
      await passGate();
      inflight++;
      const call: CoordCall = { session, op: args[0], pid: 0, code: null, startedAt: Date.now() };
      calls.push(call);
      try {
        const r = await run(COORD, args, {
          env: coordEnv(session),
          timeoutMs: 30_000,
          onSpawn: (pid) => (call.pid = pid),
        });
        call.code = r.code;
        if (r.code !== 0 && r.code !== 3 && r.code !== 4) call.error = r.stderr.trim();
        return r;
      } catch (err) {
        call.error = String(err);
        return undefined;
      } finally {
        call.endedAt = Date.now();
        inflight--;
      }
    };

    const keepers = Array.from({ length: KEEPERS }, (_, i) => `keeper-${i}`);
    const stoppers = Array.from({ length: STOPPERS }, (_, i) => `stopper-${i}`);
    const workloadMs = SOAK_SECONDS * 1000;
    const stopAtMs = Math.round(workloadMs * 0.2);
    let stoppersSilentAt = 0;

    const keeper = async (id: string, i: number) => {
      await coord(id, ['register', '--task', `soak-${i}`, '--role', 'worker']);
      const held: string[] = [];
      let n = 0;
      while (!stopWorkload) {
        await coord(id, ['heartbeat', '--phase', pick(['editing', 'testing', 'reviewing'])]);
        await sleep(500 + random() * 700);
        if (stopWorkload) break;
        const peer = pick(keepers.filter((k) => k !== id));
        const r = random();
        if (r < 0.25 || (held.length && r < 0.4)) {
          if (held.length && random() < 0.6) await coord(id, ['unlock', held.shift()!]);
          else {
            const res = `res-${id}-${n++}`;
            if ((await coord(id, ['lock', res, '--ttl', '120', '--reason', 'soak']))?.code === 0)
              held.push(res);
          }
        } else if (r < 0.5) {
          // Usually held by someone else: exit 3 (Conflict) is an op like any other.
          const got = await coord(id, ['lock', 'shared', '--ttl', '30']);
          if (got?.code === 0) await coord(id, ['unlock', 'shared']);
        } else if (r < 0.7) await coord(id, ['send', peer, `hello ${n++}`, '--subject', 'soak']);
        else if (r < 0.85) await coord(id, ['dispatch', peer, '--ticket', `SOAK-${i}-${n++}`]);
        else await coord(id, ['recv', '--drain']);
        await sleep(500 + random() * 700);
      }
      // Leave explicitly, so the drain phase (longer than the TTL) cannot cull a keeper.
      await coord(id, ['dereg']);
    };

    // Stoppers register, take a lock and heartbeat, then go silent at a known time: each must be
    // culled exactly once (session.dereg ttl-expired) and its lock released once (owner-evicted).
    const stopper = async (id: string) => {
      await coord(id, ['register', '--task', 'soon-silent', '--role', 'worker']);
      await coord(id, ['lock', `held-${id}`, '--ttl', '600', '--reason', 'forgotten']);
      while (Date.now() - tStarted < stopAtMs) {
        await coord(id, ['heartbeat']);
        await sleep(1000 + random() * 1000);
      }
    };

    // Hook jobs through the real CLI; some sleep long enough to be running when their replica dies
    // or hangs (a job-coordinator victim is chosen among the replicas running one).
    const jobs: Array<{ id?: string; argv: string[]; code: number | null; stderr: string }> = [];
    const jobSubmitter = async () => {
      let n = 0;
      while (!stopWorkload) {
        await passGate();
        const argv = random() < 0.4 ? ['sleep', '3'] : ['true'];
        inflight++;
        try {
          const r = await run(
            process.execPath,
            [COORDBUS, 'jobs', 'run', '--json', '--hook', 'soak', '--name', `soak-${n++}`, '--', ...argv],
            { env: { ...commonEnv(), COORD_SESSION_ID: 'jobs' }, cwd: dir, timeoutMs: 30_000 },
          );
          const id = r.code === 0 ? (JSON.parse(r.stdout) as { id: string }).id : undefined;
          jobs.push({ id, argv, code: r.code, stderr: r.stderr });
        } catch (err) {
          jobs.push({ argv, code: null, stderr: String(err) });
        } finally {
          inflight--;
        }
        await sleep(700 + random() * 900);
      }
    };

    // Log lines with sequence numbers; every third one breaches the threshold. Durations are
    // unique per line so the archive's natural key (source, event, ts, duration) never merges two.
    let seq = 0;
    const breaching: number[] = [];
    const logWriter = async () => {
      while (!stopWorkload) {
        let chunk = '';
        for (let k = 0; k < 3; k++) {
          seq++;
          const breach = seq % 3 === 0;
          if (breach) breaching.push(seq);
          chunk += stageLine(seq, breach ? BREACH_MS + 100 + seq / 1000 : 10 + (seq % 97) / 100);
        }
        appendFileSync(logPath, chunk);
        await sleep(100);
      }
    };

    // ---- the faults -----------------------------------------------------------------------
    const figures: Figures = { kills: [], pauses: [], redisRestarts: 0, pgOutages: [], redisFull: [] };
    /** Entries delivered to a replica's consumer (`<host>-<pid>`) and not acked, over every stream and group. */
    const pendingOf = async (pid: number): Promise<number> => {
      const consumer = `${hostname()}-${pid}`;
      let n = 0;
      for (const s of keyspace.archivedStreams)
        for (const g of await streamGroups(client, s)) {
          const summary = (await client.xpending(s, g.name)) as [
            unknown,
            unknown,
            unknown,
            [string, string][],
          ];
          for (const [c, count] of summary[3] ?? []) if (c === consumer) n += Number(count);
        }
      return n;
    };
    /** Pids of job-coordinator replicas running a job now: the victims that test crash handling. */
    const busyRunners = async (): Promise<Set<number>> => {
      const r = await run(
        process.execPath,
        [COORDBUS, 'jobs', 'ls', '--json', '--hook', 'soak', '--status', 'running'],
        { env: commonEnv(), cwd: dir, timeoutMs: 30_000 },
      ).catch(() => undefined);
      try {
        return new Set(
          (JSON.parse(r?.stdout ?? '[]') as Array<{ runner_pid?: number }>).map((j) => j.runner_pid!),
        );
      } catch {
        return new Set();
      }
    };
    const chooseVictim = async (name: ConsumerService): Promise<ServiceProcess> => {
      const list = replicas[name];
      if (name === 'job-coordinator') {
        const busy = await busyRunners();
        const running = list.filter((p) => busy.has(p.child.pid!));
        if (running.length) return pick(running, faultRandom);
      }
      return pick(list, faultRandom);
    };
    // The victim hangs for a second first (SIGSTOP): a blocked XREADGROUP is still served while
    // it is stopped, so it dies holding delivered, unacked entries that the others must reclaim.
    const killAndReplace = async (name: ConsumerService | 'log-tailer') => {
      if (name === 'log-tailer') {
        await tailer!.stop('SIGKILL');
        figures.kills.push('log-tailer');
        await startTailer();
        return;
      }
      const victim = await chooseVictim(name);
      replicas[name].splice(replicas[name].indexOf(victim), 1);
      victim.child.kill('SIGSTOP');
      await sleep(1000);
      const pending = name === 'job-coordinator' ? 0 : await pendingOf(victim.child.pid!);
      await victim.stop('SIGKILL');
      figures.kills.push(`${name}#${victim.child.pid}${pending ? ` (${pending} pending)` : ''}`);
      await startReplica(name);
    };
    // Paused past the reclaim idle time (and past the job lock duration): the others take over
    // its entries (or its jobs are found stalled); on SIGCONT it resumes mid-handler.
    const pauseOne = async (among: readonly ConsumerService[]) => {
      const name = pick(among, faultRandom);
      const victim = await chooseVictim(name);
      victim.child.kill('SIGSTOP');
      let pending = 0;
      try {
        await sleep(RECLAIM_MS * 3);
        if (name !== 'job-coordinator') pending = await pendingOf(victim.child.pid!);
      } finally {
        victim.child.kill('SIGCONT');
      }
      figures.pauses.push(
        `${name}#${victim.child.pid} ${RECLAIM_MS * 3} ms (${pending} still pending on it)`,
      );
    };
    const restartRedis = async () => {
      gate = new Promise((r) => (openGate = r));
      try {
        await waitFor(() => inflight === 0, 'the fleet to pause before the Redis restart', 60_000, 10);
        // SIGTERM: Redis fsyncs the AOF on shutdown, so nothing it acknowledged is lost.
        await redis.restart('SIGTERM', 300);
        figures.redisRestarts++;
      } finally {
        gate = undefined;
        openGate();
      }
    };
    // Every service process alive now, by a readable name.
    const services = (): Array<[string, ServiceProcess]> => [
      ...CONSUMERS.flatMap((n) =>
        replicas[n].map((p) => [`${n}#${p.child.pid}`, p] as [string, ServiceProcess]),
      ),
      [`log-tailer#${tailer!.child.pid}`, tailer!],
    ];
    /** /readyz's status, and its body (the failing checks) when not ready. */
    const readyz = (p: ServiceProcess) =>
      fetch(`${p.url}/readyz`, { signal: AbortSignal.timeout(5000) }).then(
        async (r) => ({ status: r.status, why: r.status === 200 ? '' : await r.text() }),
        (err: Error) => ({ status: 0, why: err.message }),
      );
    /** Polls /readyz of every service for `ms`: the names of those that answered 503. */
    const notReadyDuring = async (ms: number): Promise<string[]> => {
      const seen = new Set<string>();
      const until = Date.now() + ms;
      while (Date.now() < until) {
        await Promise.all(
          services().map(async ([name, p]) => {
            if ((await readyz(p)).status === 503) seen.add(name);
          }),
        );
        await sleep(200);
      }
      return [...seen].sort();
    };
    /** Waits until every service answers /readyz 200; how long that took. */
    const allReadyAgain = async (what: string): Promise<number> => {
      const began = Date.now();
      let last: string[] = [];
      await waitFor(
        async () => {
          const statuses = await Promise.all(services().map(async ([n, p]) => [n, await readyz(p)] as const));
          // The checks that still fail say why (which consumer group, the store, Redis).
          last = statuses.filter(([, r]) => r.status !== 200).map(([n, r]) => `${n} ${r.status} ${r.why}`);
          return last.length === 0;
        },
        `every service ready again after ${what}`,
        60_000,
        250,
      ).catch((err: Error) => {
        throw new Error(`${err.message}:\n${last.join('\n')}`);
      });
      return Date.now() - began;
    };
    // The archive database goes away: the archivists keep their entries pending (uncounted), are
    // not ready while it is gone, and archive everything once it is back. Coord ops go on.
    const databaseOutage = async () => {
      await pgProxy.cut();
      let notReady: string[];
      try {
        notReady = await notReadyDuring(PG_DOWN_MS);
      } finally {
        await pgProxy.start();
      }
      figures.pgOutages.push({ notReady, readyAgainMs: await allReadyAgain('the database outage') });
    };
    // Redis full: maxmemory below what it uses, so every write that would grow it is refused (OOM)
    // while reads, acks and trims still run. The fleet waits at the gate, as for the restart.
    const redisFull = async () => {
      gate = new Promise((r) => (openGate = r));
      let notReady: string[];
      let maxmemory: number;
      try {
        await waitFor(() => inflight === 0, 'the fleet to pause before Redis fills up', 60_000, 10);
        const used = Number(/used_memory:(\d+)/.exec(await client.info('memory'))![1]);
        maxmemory = Math.floor(used / 2);
        await client.config('SET', 'maxmemory-policy', 'noeviction');
        await client.config('SET', 'maxmemory', String(maxmemory));
        try {
          notReady = await notReadyDuring(REDIS_FULL_MS);
        } finally {
          await client.config('SET', 'maxmemory', '0');
        }
      } finally {
        gate = undefined;
        openGate();
      }
      figures.redisFull.push({ notReady, readyAgainMs: await allReadyAgain('Redis was full'), maxmemory });
    };
    // One cycle (~60 s): a SIGKILL of every consumer service and of the tailer, a SIGSTOP of a
    // stream consumer and of a job-coordinator, one Redis restart, the database down, Redis full,
    // in a shuffled order. Cycles
    // repeat while at least 40 s of the workload remain; the first always runs to its end.
    const faults = async () => {
      const stepMs = 4000;
      await sleep(2000);
      do {
        const steps: Array<() => Promise<void>> = [
          ...CONSUMERS.map((name) => () => killAndReplace(name)),
          () => killAndReplace('log-tailer'),
          () => pauseOne(['fanout-publisher', 'sentinel-subscriber', 'telemetry-archivist']),
          () => pauseOne(['job-coordinator']),
          restartRedis,
          databaseOutage,
          redisFull,
        ];
        for (let i = steps.length - 1; i > 0; i--) {
          const j = Math.floor(faultRandom() * (i + 1));
          [steps[i], steps[j]] = [steps[j], steps[i]];
        }
        for (const step of steps) {
          const began = Date.now();
          await step();
          await sleep(Math.max(500, stepMs - (Date.now() - began)));
        }
      } while (workloadMs - (Date.now() - tStarted) >= 40_000);
    };

    const fleet = Promise.all([
      ...keepers.map((id, i) => keeper(id, i)),
      Promise.all(stoppers.map((id) => stopper(id))).then(() => (stoppersSilentAt = Date.now())),
      jobSubmitter(),
      logWriter(),
    ]);
    await Promise.all([faults(), sleep(workloadMs)]);
    stopWorkload = true;
    await fleet;
    const tWorkloadEnd = Date.now();

    // ---- drain ----------------------------------------------------------------------------
    const breachEvents = async () =>
      (await client.xrange(keyspace.telemetryEvents, '-', '+'))
        .map(([, f]) => codec.decode(Schemas.telemetry, f) as TelemetryEvent)
        .filter((e) => e.detail.kind === 'breach');
    // The tailer must have read the whole file before its graceful stop flushes the open episode;
    // after that nothing writes to any stream, so the drain below has a fixed target.
    await waitFor(
      async () => (await breachEvents()).length >= breaching.length,
      `${breaching.length} breach events`,
      60_000,
      250,
    );
    expect(await tailer!.stop('SIGTERM')).toBe(0);

    const stoppersCulled = async () =>
      (await client.xrange(keyspace.coordEvents, '-', '+'))
        .map(([, f]) => codec.decode(Schemas.coordEvent, f) as CoordEvent)
        .filter((e) => e.tx_kind === 'session.dereg' && e.session_id?.startsWith('stopper-')).length >=
      STOPPERS;
    await waitFor(stoppersCulled, `all ${STOPPERS} silent sessions culled`, 60_000, 250);
    const jobIds = jobs.flatMap((j) => (j.id ? [j.id] : []));
    type ListedJob = { id: string; status: string };
    const jobsSettled = async (): Promise<ListedJob[] | undefined> => {
      const r = await run(process.execPath, [COORDBUS, 'jobs', 'ls', '--json', '--hook', 'soak'], {
        env: commonEnv(),
        cwd: dir,
      });
      const ls = JSON.parse(r.stdout) as ListedJob[];
      const done =
        ls.length >= jobIds.length && ls.every((j) => TERMINAL_JOB_STATUSES.includes(j.status as never));
      return done ? ls : undefined;
    };
    const jobList = (await waitFor(
      jobsSettled,
      'every job to reach a terminal status',
      90_000,
      1000,
    )) as ListedJob[];

    const pg = new Client(pgConnectionConfig(PG_URL));
    await pg.connect();
    try {
      const archived = async (stream: string) =>
        (
          await pg.query<{ entry_id: string; data: string }>(
            `SELECT entry_id, data FROM "${pgSchema}".events WHERE stream = $1`,
            [stream],
          )
        ).rows;
      const expectedEnvelopes = calls.length * 2;
      // Every consumer acks only after its durable effect (archive commit, observation, fan-out),
      // so once every group has been delivered everything and holds nothing pending, nothing more
      // will appear downstream. Checked in flow order (a stream before the streams its consumers
      // write to: observations and dead letters last) and on two passes in a row.
      const flowOrder = [
        keyspace.coordIngest,
        keyspace.coordEvents,
        keyspace.telemetryEvents,
        keyspace.jobEvents,
        keyspace.sentinelObservations,
        ...keyspace.archivedStreams.filter((x) => x.endsWith(':dead')),
      ];
      let lastDrain = '';
      let drainedPasses = 0;
      await waitFor(
        async () => {
          for (const s of flowOrder)
            if (!(await streamDrained(client, s))) {
              lastDrain = `${s}: ${JSON.stringify(await streamGroups(client, s))}`;
              drainedPasses = 0;
              return false;
            }
          return ++drainedPasses >= 2;
        },
        'the system to drain',
        90_000,
        500,
      ).catch((err: Error) => {
        throw new Error(`${err.message}: ${lastDrain}`);
      });
      const tDrained = Date.now();

      // ---- figures (printed before asserting, so a failing run still shows them) ------------
      const alive = [...CONSUMERS.flatMap((n) => replicas[n])];
      const reclaimed = (
        await Promise.all(
          alive.map((p) => metricSum(p.url, 'coordbus_stream_reclaimed_total').catch(() => 0)),
        )
      ).reduce((a, b) => a + b, 0);
      const culls = (
        await Promise.all(
          replicas['sentinel-subscriber'].map((p) =>
            metricSum(p.url, 'coordbus_sentinel_culls_total').catch(() => 0),
          ),
        )
      ).reduce((a, b) => a + b, 0);
      const deadLetters: Record<string, number> = {};
      for (const s of keyspace.archivedStreams.filter((x) => x.endsWith(':dead')))
        if (await client.xlen(s)) deadLetters[s] = await client.xlen(s);
      const coordEvents = (await client.xrange(keyspace.coordEvents, '-', '+')).map(
        ([id, f]) => [id, codec.decode(Schemas.coordEvent, f) as CoordEvent] as const,
      );
      const observations = (await client.xrange(keyspace.sentinelObservations, '-', '+')).map(
        ([id, f]) => [id, codec.decode(Schemas.observation, f) as SentinelObservation] as const,
      );
      const jobEvents = (await client.xrange(keyspace.jobEvents, '-', '+')).map(
        ([id, f]) => [id, codec.decode(Schemas.jobEvent, f) as JobEvent] as const,
      );
      const telemetry = (await client.xrange(keyspace.telemetryEvents, '-', '+')).map(
        ([id, f]) => [id, codec.decode(Schemas.telemetry, f) as TelemetryEvent] as const,
      );
      const failedCalls = calls.filter((c) => c.error);
      // Longest silence of a keeper (between the ends of two liveness-refreshing calls): the
      // margin the TTL had. A keeper culled by mistake would show up here first.
      const gaps = new Map(
        keepers.map((k) => {
          const beats = calls
            .filter(
              (c) => c.session === k && (c.op === 'register' || c.op === 'heartbeat' || c.op === 'dereg'),
            )
            .map((c) => c.endedAt ?? c.startedAt)
            .sort((a, b) => a - b);
          return [k, Math.max(0, ...beats.slice(1).map((t, i) => t - beats[i]))];
        }),
      );
      const maxGapMs = Math.max(...gaps.values());
      console.log(
        [
          `soak figures (seed ${SEED}):`,
          `  duration: total ${((tDrained - t0) / 1000).toFixed(1)} s = start ${((tStarted - t0) / 1000).toFixed(1)} s + workload ${((tWorkloadEnd - tStarted) / 1000).toFixed(1)} s + drain ${((tDrained - tWorkloadEnd) / 1000).toFixed(1)} s`,
          `  coord calls ${calls.length} (exit 3 conflict ${calls.filter((c) => c.code === 3).length}, exit 4 not found ${calls.filter((c) => c.code === 4).length}, other failures ${failedCalls.length}) -> envelopes ${expectedEnvelopes}`,
          `  longest keeper heartbeat gap ${(maxGapMs / 1000).toFixed(1)} s (TTL ${SESSION_TTL_S} s)`,
          `  coord events ${coordEvents.length}, observations ${observations.length}, culls ${culls} (surviving sentinels)`,
          `  jobs ${jobIds.length} submitted (${jobs.length - jobIds.length} refused): ${[
            ...tally(jobList.map((j) => j.status)),
          ]
            .map(([s, n]) => `${s} ${n}`)
            .join(', ')}; job events ${jobEvents.length}`,
          `  log lines ${seq}, breaching ${breaching.length}, telemetry events ${telemetry.length}`,
          `  faults: ${figures.kills.length} SIGKILLs [${figures.kills.join(', ')}], SIGSTOP [${figures.pauses.join(', ')}], Redis restarts ${figures.redisRestarts}`,
          ...figures.pgOutages.map(
            (o) =>
              `  database down ${PG_DOWN_MS} ms: /readyz 503 from [${o.notReady.join(', ')}], all 200 again ${o.readyAgainMs} ms after`,
          ),
          ...figures.redisFull.map(
            (o) =>
              `  Redis full ${REDIS_FULL_MS} ms (maxmemory ${o.maxmemory} B): /readyz 503 from [${o.notReady.join(', ')}], all 200 again ${o.readyAgainMs} ms after`,
          ),
          `  reclaimed (coordbus_stream_reclaimed_total, surviving replicas) ${reclaimed}`,
          `  dead letters ${JSON.stringify(deadLetters)}`,
        ].join('\n'),
      );

      // ---- assertions -----------------------------------------------------------------------
      // The faults really happened.
      expect(figures.kills.length).toBeGreaterThanOrEqual(CONSUMERS.length + 1);
      expect(figures.pauses.length).toBeGreaterThanOrEqual(2);
      expect(figures.redisRestarts).toBeGreaterThanOrEqual(1);
      expect(figures.pgOutages.length).toBeGreaterThanOrEqual(1);
      expect(figures.redisFull.length).toBeGreaterThanOrEqual(1);
      expect(stoppersSilentAt).toBeGreaterThan(0);

      // Every broken property is collected, so one failing run reports all of them at once.
      const violations: Record<string, unknown> = {};
      const check = (what: string, problems: unknown[]) => {
        if (problems.length) violations[what] = problems.slice(0, 20);
      };

      // Every call ran to an answer: ok, Conflict (a lock held by someone else) or NotFound (e.g.
      // a send to a culled peer). Anything else (Unavailable, a timeout) is a fault that leaked.
      check(
        'coord calls that failed',
        failedCalls.map((c) => `${c.session} ${c.op}: exit ${c.code}: ${c.error}`),
      );

      // 1. Envelopes: each coord process sends a pre and a post envelope, stamped with its pid.
      // The ingest stream is trimmed once every group acked, so the fleet's own ledger is the
      // reference: the archive must hold exactly {pid/pre, pid/post} for every call, once each.
      const expectedKeys = calls.flatMap((c) => [`${c.pid}/${c.op}/pre`, `${c.pid}/${c.op}/post`]);
      const ingestRows = await archived(keyspace.coordIngest);
      const envKey = (e: CoordOpEnvelope) => `${e.pid}/${e.fields.op}/${e.fields.phase}`;
      const bySentinel = (e: CoordOpEnvelope) => sentinelPids.has(e.pid);
      const ingestEnvelopes = ingestRows.map((r) => JSON.parse(r.data) as CoordOpEnvelope);
      check(
        'envelopes archived (expected = the fleet ledger)',
        multisetDiff(expectedKeys, ingestEnvelopes.filter((e) => !bySentinel(e)).map(envKey)),
      );
      // The sentinel's live-view envelopes: exactly one per coord event that has a live line,
      // whichever replica observed it and however often it was redelivered.
      const liveKey = (e: CoordOpEnvelope) =>
        `${e.fields.op}/${e.fields.session}/${e.fields.resource}/${e.ts}`;
      const expectedLive = coordEvents
        .map(([, e]) => liveEnvelope(e, { host: '', pid: 0 }))
        .filter((e): e is CoordOpEnvelope => e !== undefined)
        .map(liveKey);
      check(
        'sentinel live-view envelopes archived (expected = one per coord event with a live line)',
        multisetDiff(expectedLive, ingestEnvelopes.filter(bySentinel).map(liveKey)),
      );
      // What is still in the ingest stream is archived under the same entry id.
      const archivedIngestIds = new Set(ingestRows.map((r) => r.entry_id));
      check(
        'ingest entries not archived',
        (await client.xrange(keyspace.coordIngest, '-', '+'))
          .map(([id]) => id)
          .filter((id) => !archivedIngestIds.has(id)),
      );

      // 2. Fan-out: every envelope reached the replay stream exactly once (dedup on the ingest id).
      const replay = (await client.xrange(keyspace.coordReplay, '-', '+')).map(
        ([, f]) => codec.decode(Schemas.coordOp, f) as CoordOpEnvelope,
      );
      check(
        'envelopes fanned out to the replay stream',
        multisetDiff(expectedKeys, replay.filter((e) => !bySentinel(e)).map(envKey)),
      );
      check(
        'sentinel live-view envelopes fanned out to the replay stream',
        multisetDiff(expectedLive, replay.filter(bySentinel).map(liveKey)),
      );

      // 3. The other durable streams are only safety-capped far above this run's size, so XRANGE
      // is their whole history: the archive holds exactly their entries (by entry id; telemetry
      // by its natural key too, which is what the archive dedups a re-emitted event on).
      const byStream: Array<[string, readonly string[]]> = [
        [keyspace.coordEvents, coordEvents.map(([id]) => id)],
        [keyspace.sentinelObservations, observations.map(([id]) => id)],
        [keyspace.jobEvents, jobEvents.map(([id]) => id)],
      ];
      for (const [stream, ids] of byStream)
        check(
          `archive of ${stream} (expected = XRANGE)`,
          multisetDiff(
            [...ids],
            (await archived(stream)).map((r) => r.entry_id),
          ),
        );
      const teleKey = (e: TelemetryEvent) => [e.source, e.event, e.ts, e.duration_ms].join('/');
      const teleRows = await archived(keyspace.telemetryEvents);
      check(
        `archive of ${keyspace.telemetryEvents} (expected = each distinct event of XRANGE once)`,
        multisetDiff(
          [...new Set(telemetry.map(([, e]) => teleKey(e)))],
          teleRows.map((r) => teleKey(JSON.parse(r.data) as TelemetryEvent)),
        ),
      );
      const telemetryIds = new Set(telemetry.map(([id]) => id));
      check(
        'archived telemetry rows that are not in the stream',
        teleRows.filter((r) => !telemetryIds.has(r.entry_id)).map((r) => r.entry_id),
      );
      // Coord events are unique by (source, tx_id) — what the archive's natural key and the
      // sentinel's dedup rely on — and each got exactly one observation.
      const txKeys = coordEvents.map(([, e]) => `${e.source}/${e.tx_id}`);
      check('coord events sharing a (source, tx_id)', multisetDiff([...new Set(txKeys)], txKeys));
      check(
        'observations per coord event',
        multisetDiff(
          txKeys,
          observations.map(([, o]) => `${o.source}/${o.tx_id}`),
        ),
      );

      // 4. Liveness: culls are decided by one atomic re-check (evictIfExpired), so a session is
      // evicted once however many replicas race; keepers heartbeat well inside the TTL, also
      // around the Redis restart, and leave with an explicit dereg.
      const deregs = coordEvents
        .map(([, e]) => e)
        .filter((e) => e.tx_kind === 'session.dereg')
        .map((e) => `${e.session_id}/${(e.payload as { reason: string }).reason}`);
      check(
        'session.dereg events (keepers explicit once, stoppers ttl-expired once)',
        multisetDiff(
          [...keepers.map((k) => `${k}/explicit`), ...stoppers.map((st) => `${st}/ttl-expired`)],
          deregs,
        ),
      );
      if (violations['session.dereg events (keepers explicit once, stoppers ttl-expired once)'])
        violations['longest heartbeat gap per keeper (ms), for the above'] = Object.fromEntries(gaps);
      const evictedLocks = coordEvents
        .map(([, e]) => e)
        .filter(
          (e) =>
            e.tx_kind === 'lock.release' && (e.payload as { reason?: string }).reason === 'owner-evicted',
        )
        .map((e) => String(e.resource));
      check(
        'locks released as owner-evicted',
        multisetDiff(
          stoppers.map((st) => `held-${st}`),
          evictedLocks,
        ),
      );

      // 5. Jobs: exactly one terminal status record per job, and `jobs ls` agrees.
      check(
        'job submissions that failed',
        jobs.filter((j) => j.code !== 0).map((j) => `exit ${j.code}: ${j.stderr}`),
      );
      check(
        'jobs listed (expected = submitted)',
        multisetDiff(
          jobIds,
          jobList.map((j) => j.id),
        ),
      );
      const terminal = jobEvents.map(([, e]) => e).filter((e) => TERMINAL_JOB_STATUSES.includes(e.status));
      check(
        'terminal job events per job',
        multisetDiff(
          jobIds,
          terminal.map((e) => e.job_id),
        ),
      );
      const lsStatus = new Map(jobList.map((j) => [j.id, j.status]));
      check(
        'terminal job event vs jobs ls status',
        terminal
          .filter((e) => lsStatus.get(e.job_id) !== e.status)
          .map((e) => `${e.job_id}: event ${e.status}, ls ${lsStatus.get(e.job_id)}`),
      );

      // 6. Telemetry: each breaching line exactly once, no event for a line under the threshold.
      check(
        'breach events per breaching log line (key = line seq)',
        multisetDiff(
          breaching.map(String),
          telemetry
            .map(([, e]) => e)
            .filter((e) => e.detail.kind === 'breach')
            .map((e) => String(e.detail.request_id).replace('soak-', '')),
        ),
      );

      // 7. The outages were seen and waited out: every archivist said not ready while its database
      // was gone (and nobody else did: the database is the archivists' alone), the tailer while
      // Redis refused its writes; every service was ready again after each (waited for above).
      // Nothing was dead-lettered: an outage never counts toward an entry's delivery limit.
      check(
        'not ready during the database outage (expected = every archivist, only they)',
        figures.pgOutages
          .map((o) => o.notReady.map((n) => n.replace(/#\d+$/, '')))
          .filter(
            (names) =>
              names.join() !== Array(REPLICAS['telemetry-archivist']).fill('telemetry-archivist').join(),
          ),
      );
      check(
        'not ready while Redis was full (expected: the log-tailer among them)',
        figures.redisFull.filter((o) => !o.notReady.some((n) => n.startsWith('log-tailer#'))),
      );
      check('dead letters (expected none)', Object.entries(deadLetters));

      // 8. No consumer group holds pending entries, on any stream, after the drain.
      const stuck: string[] = [];
      for (const st of keyspace.archivedStreams)
        for (const g of await streamGroups(client, st)) {
          const summary = (await client.xpending(st, g.name)) as [number, ...unknown[]];
          if (Number(summary[0]) !== 0) stuck.push(`${st}/${g.name}: ${summary[0]} pending`);
        }
      check('consumer groups with pending entries', stuck);

      if (Object.keys(violations).length) {
        // Evidence for a report: what each tailer process said about where it resumed, and its warnings.
        violations['log-tailer processes (resume points, warnings)'] = tailers.map((t) =>
          t.lines.filter((l) => /"level":([4-6]0)|following|opened|checkpoint|rotat|truncat/.test(l)),
        );
      }
      expect(violations).toEqual({});
    } finally {
      await pg.end();
    }
  });
});
