'use strict';
// bench/fleet driver: plays a share of the fleet's agent sessions inside ONE Node process, forked by
// bench/fleet/run.js (messages over IPC). Each op goes through `runCoord`, the function `bin/coord`
// runs (its own connection, the pre/post op envelopes, the same Lua), so the only thing left out
// versus real agents is the start-up of one Node process per op, which run.js measures apart.
// Hook jobs go through `hooksRunCommand`, what `coordbus hooks run <Event>` runs.
//
// What one session does (the way Claude Code sessions with the installed hooks behave):
// - registers (SessionStart hook), staggered over the ramp;
// - a tool call every U(toolMin, toolMax) s; each is a PostToolUse hook, which starts
//   `coord heartbeat --ensure` only when the session's throttle window (15 s, the hook's
//   default) has passed — in the background, never waited by the session;
// - a coord op every U(0.4, 1.6) x opEvery s, one at a time: lock a shared resource (sometimes
//   held by another session: exit 3, as for real), unlock what it holds, send to a peer, drain
//   its inbox;
// - a `Stop` hook job now and then (every U(0.5, 1.5) x jobEvery s), queued to the job-coordinator;
// - a silent session stops everything silentAfter ms after it starts (the agent died or hung),
//   so the sentinel must cull it.
//
// A driver plays one of two parts (cfg.role): 'sessions' (registers, heartbeats, ops) or 'hooks'
// (the same sessions' `Stop` hook runs, on the same schedule, each session falling silent at the
// same moment). Real hook runs are `coordbus hooks run` processes of their own, never inside the
// agent that times its ops, so the part playing the agent does none of their work. (Measured: the
// ops' p99 did not move when the hook runs left their loop; docs/benchmarks.md, fleet section.)
require('reflect-metadata');
const { monitorEventLoopDelay, performance } = require('node:perf_hooks');
const { dist } = require('../lib');
const { runCoord } = require(dist('apps/cli/src/coord/run.js'));
const { hooksRunCommand } = require(dist('apps/cli/src/jobs/hooks-run.js'));

const THROTTLE_MS = 15_000; // apps/cli hooks: DEFAULT_THROTTLE_S

/** A writable that keeps what runCoord prints (it only calls write). */
// A stdout for runCoord: `recv` removes a page only once its write callback fired (at least
// once), so the callback must be called or every drain with messages waits forever.
function sink() {
  const s = {
    text: '',
    write: (chunk, cb) => {
      s.text += chunk;
      if (typeof cb === 'function') process.nextTick(cb);
      return true;
    },
  };
  return s;
}

const uniform = (a, b) => a + Math.random() * (b - a);

let cfg;
let stopping = false;
const sessions = [];
const inflight = new Set();
const latency = {}; // op -> ms[]
const exits = {}; // `${op} ${code}` -> n
const expected = {}; // `${session}|${op}|${phase}` -> envelopes written
const jobsFired = {}; // session -> hook runs that queued a job
const jobLatency = [];
const jobErrors = [];
const loop = monitorEventLoopDelay({ resolution: 10 });

function track(p) {
  inflight.add(p);
  p.finally(() => inflight.delete(p));
  return p;
}

/** One coord op exactly as `bin/coord <argv>` runs it, timed; returns the parsed --json output. */
async function coord(s, argv) {
  const out = sink();
  const env = {
    REDIS_URL: cfg.redisUrl,
    COORD_SESSION_ID: s.id,
    COORD_PID: String(s.pid),
    COORD_SESSION_TTL: String(cfg.ttlS),
  };
  const t0 = performance.now();
  const code = await runCoord([...argv, '--json'], { stdout: out, stderr: sink(), env });
  const ms = performance.now() - t0;
  const op = argv[0];
  (latency[op] ??= []).push(ms);
  exits[`${op} ${code}`] = (exits[`${op} ${code}`] ?? 0) + 1;
  for (const phase of ['pre', 'post']) {
    const k = `${s.id}|${op}|${phase}`;
    expected[k] = (expected[k] ?? 0) + 1;
  }
  if (code !== 0) return null;
  try {
    return JSON.parse(out.text);
  } catch {
    return null;
  }
}

function beat(s, result) {
  const at = Date.parse(result?.session?.last_heartbeat ?? '');
  if (Number.isFinite(at)) s.lastBeatMs = Math.max(s.lastBeatMs, at);
}

function later(s, ms, fn) {
  const t = setTimeout(() => {
    s.timers.delete(t);
    if (!stopping && !s.silent) fn();
  }, ms);
  s.timers.add(t);
}

function goSilent(s) {
  s.silent = true;
  for (const t of s.timers) clearTimeout(t);
  s.timers.clear();
  s.silentAt = Date.now();
}

function toolCall(s) {
  const now = Date.now();
  if (now >= s.throttleUntil) {
    s.throttleUntil = now + THROTTLE_MS;
    s.beats.add(track(coord(s, ['heartbeat', '--ensure']).then((r) => beat(s, r))));
  }
  later(s, uniform(cfg.toolMinS, cfg.toolMaxS) * 1000, () => toolCall(s));
}

async function op(s) {
  if (s.lock && Math.random() < 0.5) {
    await coord(s, ['unlock', s.lock]);
    s.lock = null;
  } else {
    const r = Math.random();
    if (r < 0.35 && !s.lock) {
      const res = `res-${Math.floor(Math.random() * cfg.resources)}`;
      if (await coord(s, ['lock', res, '--reason', 'editing'])) s.lock = res;
    } else if (r < 0.7) {
      const peer = `fleet-${Math.floor(Math.random() * cfg.total)}`;
      await coord(s, ['send', peer, 'please rebase on main', '--subject', 'fleet']);
    } else {
      await coord(s, ['recv', '--drain']);
    }
  }
  later(s, uniform(0.4, 1.6) * cfg.opEveryS * 1000, () => track(op(s)));
}

/** A `Stop` hook firing `coordbus hooks run Stop`: one background job queued for the job-coordinator. */
function hookJob(s) {
  // hooksRunCommand takes the session from process.env before its first await, so setting the
  // variable right before the call is enough even with several runs in flight.
  process.env.COORD_SESSION_ID = s.id;
  const t0 = performance.now();
  track(
    hooksRunCommand('Stop', { file: cfg.hooksFile, worktree: cfg.worktree, json: true }).then(
      (code) => {
        jobLatency.push(performance.now() - t0);
        if (code === 0) jobsFired[s.id] = (jobsFired[s.id] ?? 0) + 1;
        else jobErrors.push(`exit ${code}`);
      },
      (err) => jobErrors.push(err.message),
    ),
  );
  later(s, uniform(0.5, 1.5) * cfg.jobEveryS * 1000, () => hookJob(s));
}

async function startSession(s) {
  if (stopping) return;
  s.throttleUntil = Date.now() + THROTTLE_MS; // SessionStart registers; the next beat is a window later
  beat(s, await track(coord(s, ['register', '--task', 'fleet bench'])));
  if (stopping) return;
  if (s.silentAfterMs !== null) later(s, s.silentAfterMs, () => goSilent(s));
  later(s, uniform(cfg.toolMinS, cfg.toolMaxS) * 1000, () => toolCall(s));
  later(s, uniform(0, 1) * cfg.opEveryS * 1000, () => track(op(s)));
  if (cfg.jobEveryS > 0) later(s, uniform(0, 1) * cfg.jobEveryS * 1000, () => hookJob(s));
}

/** The 'hooks' part: only the session's hook jobs, until it falls silent as its 'sessions' twin does. */
function startHooks(s) {
  if (stopping) return;
  if (s.silentAfterMs !== null) later(s, s.silentAfterMs, () => goSilent(s));
  if (cfg.jobEveryS > 0) later(s, uniform(0, 1) * cfg.jobEveryS * 1000, () => hookJob(s));
}

async function stop() {
  stopping = true;
  for (const s of sessions) for (const t of s.timers) clearTimeout(t);
  while (inflight.size) await Promise.allSettled([...inflight]);
  loop.disable();
  const silent = {};
  // Heartbeats are the 'sessions' part's alone.
  if (cfg.role !== 'hooks')
    for (const s of sessions)
      if (s.silentAfterMs !== null) silent[s.id] = { lastBeatMs: s.lastBeatMs, silent: s.silent };
  await new Promise((resolve) =>
    process.send(
      {
        type: 'result',
        latency,
        exits,
        expected,
        jobsFired,
        jobLatency,
        jobErrors,
        silent,
        role: cfg.role,
        loopP99Ms: loop.percentile(99) / 1e6,
        loopMaxMs: loop.max / 1e6,
        cpu: process.cpuUsage(),
      },
      resolve,
    ),
  );
}

process.on('message', (m) => {
  if (m.type === 'start') {
    cfg = m.cfg;
    process.env.REDIS_URL = cfg.redisUrl;
    loop.enable();
    for (const d of m.sessions) {
      const s = { ...d, timers: new Set(), beats: new Set(), lastBeatMs: 0, lock: null, silent: false };
      sessions.push(s);
      setTimeout(() => (cfg.role === 'hooks' ? startHooks(s) : track(startSession(s))), d.startDelayMs);
    }
  } else if (m.type === 'stop') {
    stop().then(
      () => process.disconnect(),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  }
});
