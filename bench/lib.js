'use strict';
/* global fetch */
// Helpers shared by the benchmark scripts under bench/*/run.js: flags, timing, quantiles, a
// private redis-server, the built services as processes, and process CPU from /proc.
// Plain CommonJS on purpose: the scripts run with `node` straight from the tree, no build step.
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const Redis = require('ioredis').default;

/** The repository root (the scripts live two levels below it). */
const root = path.resolve(__dirname, '..');

/**
 * Absolute path of a file in the build output, e.g. `dist('apps/log-tailer/main.js')`.
 * @param {string} rel path under dist/
 * @returns {string}
 */
const dist = (rel) => path.join(root, 'dist', rel);

/**
 * Exits with code 2 and a hint when the build output the script needs is missing, so a fresh
 * checkout fails with "run npm run build" rather than a MODULE_NOT_FOUND stack.
 * @param {...string} rels paths under dist/ that must exist
 */
function requireBuilt(...rels) {
  if (rels.every((rel) => fs.existsSync(dist(rel)))) return;
  console.error('dist/ is missing: run `npm run build` first');
  process.exit(2);
}

/**
 * The raw value after `--<name>` on the command line, or `dflt` when the flag is absent.
 * @param {string} name flag name without the leading dashes
 * @param {*} [dflt] returned when the flag is absent
 * @returns {string|*}
 */
function argString(name, dflt) {
  const argv = process.argv.slice(2);
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
}

/**
 * The number after `--<name>` on the command line, or `dflt` when the flag is absent
 * (`--calls 30` -> 30). A flag given without a value yields NaN, as before the helpers were shared.
 * @param {string} name flag name without the leading dashes
 * @param {number} dflt returned when the flag is absent
 * @returns {number}
 */
function arg(name, dflt) {
  const v = argString(name, undefined);
  return v === undefined && !hasFlag(name) ? dflt : Number(v);
}

/**
 * Whether the bare switch `--<name>` is on the command line (e.g. `--no-pg`, `--json`).
 * @param {string} name switch name without the leading dashes
 * @returns {boolean}
 */
function hasFlag(name) {
  return process.argv.slice(2).includes(`--${name}`);
}

/**
 * Resolves after `ms` milliseconds.
 * @param {number} ms
 * @returns {Promise<void>}
 */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A monotonic clock reading for {@link secondsSince} (process.hrtime.bigint()).
 * @returns {bigint}
 */
const hrtime = () => process.hrtime.bigint();

/**
 * Seconds elapsed since a {@link hrtime} reading.
 * @param {bigint} t0
 * @returns {number}
 */
const secondsSince = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;

/**
 * A monotonic clock in milliseconds (fractional), for timing with {@link rate}.
 * @returns {number}
 */
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * Items per second, rounded to an integer, for `n` items in `ms` milliseconds.
 * @param {number} n
 * @param {number} ms
 * @returns {number}
 */
const rate = (n, ms) => Math.round((n / ms) * 1000);

/**
 * A number with thousands separators (`12345` -> `12,345`).
 * @param {number} n
 * @returns {string}
 */
const fmt = (n) => n.toLocaleString('en-US');

/**
 * The value at index floor(q * n) of the sorted samples (clamped to the last one), q in [0, 1].
 * Does not modify `xs`. Note the rank rule differs from {@link pct}; each script keeps the one its
 * published figures were computed with.
 * @param {number[]} xs samples
 * @param {number} q quantile, e.g. 0.99
 * @returns {number|undefined} undefined when there are no samples
 */
function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/**
 * Nearest-rank percentile: the value at rank ceil(p/100 * n) of the sorted samples, p in (0, 100].
 * Does not modify `xs`.
 * @param {number[]} xs samples
 * @param {number} p percentile, e.g. 99
 * @returns {number|undefined} undefined when there are no samples
 */
function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

/**
 * Polls `check` until it returns a truthy value and resolves with that value.
 * @template T
 * @param {() => T|Promise<T>} check
 * @param {string} what named in the timeout error
 * @param {number} [timeoutMs=60000]
 * @param {number} [everyMs=10] pause between polls
 * @returns {Promise<T>}
 */
async function waitFor(check, what, timeoutMs = 60_000, everyMs = 10) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it; the probe is closed again).
 * @returns {Promise<number>}
 */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * A Redis to benchmark against: REDIS_URL when set and `useEnv` is true, else a private
 * `redis-server` (no persistence, a temporary --dir) on a free port, resolved once it answers PING.
 * `stop()` is synchronous (safe in a process 'exit' handler): it kills the private server and
 * removes its directory; for REDIS_URL it does nothing. `args` are extra server options (e.g.
 * `['--appendonly', 'yes']` to run as `npm start` does); `pid` is the private server's (for /proc).
 * @param {{useEnv?: boolean, timeoutMs?: number, args?: string[]}} [opts]
 * @returns {Promise<{url: string, stop: () => void, pid?: number}>}
 */
async function startRedis({ useEnv = true, timeoutMs = 10_000, args = [] } = {}) {
  if (useEnv && process.env.REDIS_URL) return { url: process.env.REDIS_URL, stop: () => undefined };
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-redis-'));
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      ...args,
    ],
    { stdio: 'ignore' },
  );
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const url = `redis://127.0.0.1:${port}`;
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
        const probe = new Redis(url, {
          lazyConnect: true,
          retryStrategy: () => null,
          maxRetriesPerRequest: 0,
        });
        probe.on('error', () => undefined); // refused until redis-server listens
        const pong = await probe
          .connect()
          .then(() => probe.ping())
          .catch(() => null);
        probe.disconnect();
        return pong === 'PONG';
      },
      `redis-server on port ${port}`,
      timeoutMs,
      50,
    );
  } catch (err) {
    stop();
    throw err;
  }
  return { url, stop, pid: child.pid };
}

/**
 * Deletes every key matching `pattern` (SCAN + UNLINK, so a large namespace does not block Redis).
 * @param {import('ioredis').Redis} redis
 * @param {string} pattern a SCAN MATCH pattern, e.g. `bench-x-123:*`
 * @returns {Promise<void>}
 */
async function deleteKeys(redis, pattern) {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
}

/**
 * Starts a built service, `node [nodeArgs] dist/apps/<app>/main.js [args]`, with HTTP on a free
 * port of 127.0.0.1 and LOG_LEVEL=info unless `env` says otherwise, and resolves once it is up:
 * when `ready` (a RegExp or substring) appears on its stdout (its start log line), or when
 * `readyUrl` answers 200. Rejects, killing the process, if it exits or times out first.
 * stdout is drained after the start line; stderr is passed through (`stderr: 'inherit'`) or kept
 * for the failure message only (`stderr: 'capture'`).
 * @param {string} app folder under dist/apps, e.g. 'fanout-publisher'
 * @param {{env?: object, args?: string[], nodeArgs?: string[], ready?: RegExp|string,
 *   readyUrl?: string, stdout?: 'pipe'|'inherit', stderr?: 'inherit'|'capture', timeoutMs?: number}} opts
 * @returns {Promise<{child: import('node:child_process').ChildProcess, match: RegExpExecArray|null}>}
 *   `match` is the start line's match when `ready` is a RegExp
 */
function startService(app, opts) {
  const {
    env = {},
    args = [],
    nodeArgs = [],
    ready,
    readyUrl,
    stdout = 'pipe',
    stderr = 'inherit',
    timeoutMs = 60_000,
  } = opts;
  // BENCH_CPU_PROF_DIR=<dir>: every service a benchmark starts writes a V8 CPU profile there on exit.
  const prof = process.env.BENCH_CPU_PROF_DIR
    ? [
        '--cpu-prof',
        `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`,
        `--cpu-prof-name=${app}-${Date.now()}.cpuprofile`,
      ]
    : [];
  const child = spawn(process.execPath, [...prof, ...nodeArgs, dist(`apps/${app}/main.js`), ...args], {
    cwd: root,
    env: { ...process.env, HTTP_PORT: '0', HTTP_HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', ready ? 'pipe' : stdout, stderr === 'capture' ? 'pipe' : 'inherit'],
  });
  let buf = '';
  if (stderr === 'capture') child.stderr.on('data', (d) => (buf += d.toString()));
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err, match) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.off('close', onExit);
      if (child.stdout) {
        child.stdout.removeAllListeners('data');
        child.stdout.resume();
      }
      if (err) {
        if (child.exitCode === null) child.kill('SIGKILL');
        reject(err);
      } else resolve({ child, match });
    };
    const onExit = (code) => finish(new Error(`${app} exited ${code} before it was ready:\n${buf}`));
    // 'close', not 'exit': by then its output is all read, so the error can show it.
    child.once('close', onExit);
    const timer = setTimeout(
      () => finish(new Error(`${app} did not start within ${timeoutMs} ms:\n${buf}`)),
      timeoutMs,
    );
    if (ready) {
      child.stdout.on('data', (d) => {
        buf += d.toString();
        if (typeof ready === 'string') {
          if (buf.includes(ready)) finish(null, null);
        } else {
          const m = ready.exec(buf);
          if (m) finish(null, m);
        }
      });
    } else if (readyUrl) {
      waitFor(
        async () => settled || (await fetch(readyUrl).catch(() => null))?.status === 200,
        `${app} ${readyUrl}`,
        timeoutMs,
        50,
      ).then(
        () => finish(null, null),
        (err) => finish(err),
      );
    } else {
      finish(null, null);
    }
  });
}

/**
 * Sends `signal` to a child process and resolves once it has exited (at once if it already has).
 * @param {import('node:child_process').ChildProcess} child
 * @param {NodeJS.Signals} [signal='SIGTERM']
 * @returns {Promise<void>}
 */
function stopProcess(child, signal = 'SIGTERM') {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

let clockTicks;
/**
 * Kernel clock ticks per second (getconf CLK_TCK, 100 when it cannot be read), the unit of /proc CPU times.
 * @returns {number}
 */
function clkTck() {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * utime + stime of a process in clock ticks, from /proc/<pid>/stat (Linux). Throws if it is gone.
 * @param {number} pid
 * @returns {number}
 */
function procCpuTicks(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces and ')': split after its LAST ')'.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
}

/**
 * utime + stime of each thread of a process in milliseconds, by thread id (Linux /proc): the
 * main thread's id is the pid. Threads that ended meanwhile are simply missing.
 * @param {number} pid
 * @returns {Map<number, number>}
 */
function threadCpuMs(pid) {
  const out = new Map();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), ((Number(f[11]) + Number(f[12])) * 1000) / clkTck());
    } catch {
      // ended between the listing and the read
    }
  }
  return out;
}

/**
 * utime + stime of a process in milliseconds (Linux /proc).
 * @param {number} pid
 * @param {number} [ifGone] returned instead of throwing when the process cannot be read
 * @returns {number}
 */
function procCpuMs(pid, ifGone) {
  try {
    return (procCpuTicks(pid) * 1000) / clkTck();
  } catch (err) {
    if (ifGone === undefined) throw err;
    return ifGone;
  }
}

/**
 * Total utime + stime of several processes in seconds (Linux /proc). Throws if one is gone.
 * @param {number[]} pids
 * @returns {number}
 */
const procCpuSeconds = (pids) => pids.reduce((a, p) => a + procCpuTicks(p), 0) / clkTck();

/**
 * Whether `actual` meets a target written as `>= 20`, `<= 1.5`, `> 0` or `< 100`.
 * @param {number} actual
 * @param {string} target
 * @returns {boolean}
 */
function meets(actual, target) {
  const m = /^\s*(>=|<=|>|<)\s*([\d.]+)\s*$/.exec(target);
  if (!m) throw new Error(`target must look like ">= 0.8" (got ${JSON.stringify(target)})`);
  const t = Number(m[2]);
  if (!Number.isFinite(actual)) return false;
  return m[1] === '>=' ? actual >= t : m[1] === '<=' ? actual <= t : m[1] === '>' ? actual > t : actual < t;
}

/**
 * The one way a benchmark states a result against its target: prints
 * `<name>: <figure> vs <baseline> = <ratio>x (target >= X): met|NOT met` and, when the script runs
 * under `npm run bench` (BENCH_RESULTS_FILE set by bench/run.js), appends the same as one JSON line
 * to that file, with the 1-minute load average at that moment (the machine is shared: compare
 * ratios from one run, never absolute figures across runs).
 *
 * The target applies to the ratio figure/baseline when there is a baseline, else to the figure
 * itself; where lower is better (latency, CPU) it is written with `<=`. `context` is a same-run
 * figure printed beside an absolute target (what the figure stands on, e.g. a spawn floor) without
 * entering it: no ratio, the target stays on the figure.
 * @param {{bench: string, name: string, value: number, unit: string, baseline?: {name: string,
 *   value: number}, context?: {name: string, value: number}, target: string, note?: string}} r
 * @returns {{met: boolean, ratio: number|null}}
 */
function report(r) {
  const ratio = r.baseline ? r.value / r.baseline.value : null;
  // No target: a figure shown for context beside the ones a target applies to.
  const met = r.target === undefined ? null : meets(ratio ?? r.value, r.target);
  const load = os.loadavg()[0];
  const num = (x) => (Math.abs(x) >= 100 ? fmt(Math.round(x)) : String(Number(x.toPrecision(3))));
  const vs = r.baseline
    ? ` vs ${r.baseline.name} ${num(r.baseline.value)} ${r.unit} = ${ratio.toFixed(2)}x`
    : r.context
      ? `, beside the same-run ${r.context.name} ${num(r.context.value)} ${r.unit}`
      : '';
  console.log(
    met === null
      ? `[context] ${r.name}: ${num(r.value)} ${r.unit}${vs} (no target) (load ${load.toFixed(2)})`
      : `[target] ${r.name}: ${num(r.value)} ${r.unit}${vs} (target ${r.target}${r.baseline ? 'x' : ` ${r.unit}`}): ` +
          `${met ? 'met' : 'NOT met'} (load ${load.toFixed(2)})`,
  );
  const file = process.env.BENCH_RESULTS_FILE;
  if (file) {
    const line = {
      bench: r.bench,
      name: r.name,
      value: r.value,
      unit: r.unit,
      baseline: r.baseline ?? null,
      context: r.context ?? null,
      ratio,
      target: r.target ?? null,
      met,
      load1: load,
      note: r.note ?? null,
    };
    fs.appendFileSync(file, `${JSON.stringify(line)}\n`);
  }
  return { met, ratio };
}

module.exports = {
  root,
  meets,
  report,
  dist,
  requireBuilt,
  arg,
  argString,
  hasFlag,
  sleep,
  hrtime,
  secondsSince,
  nowMs,
  rate,
  fmt,
  quantile,
  pct,
  waitFor,
  freePort,
  startRedis,
  deleteKeys,
  startService,
  stopProcess,
  clkTck,
  procCpuTicks,
  procCpuMs,
  threadCpuMs,
  procCpuSeconds,
};
