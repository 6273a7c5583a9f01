#!/usr/bin/env node
// `npm start`: the whole system on one machine. Builds, makes sure a Redis answers at REDIS_URL
// (starting a local redis-server with AOF on under <data dir>/redis when nothing does and the
// URL is local), starts every service with its output going to <data dir>/service-logs/<service>.log,
// waits until every /readyz answers 200, then prints where each one really listens; Ctrl-C stops
// everything gracefully.
//
//   npm start [-- --verbose] [-- --no-build]
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { get as httpGet } from 'node:http';
import { Socket } from 'node:net';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = resolve(fileURLToPath(import.meta.url), '..', '..');
const require = createRequire(import.meta.url);

const USAGE = `usage: npm start [-- --verbose] [-- --no-build]
  --verbose    also stream every service's log lines here, prefixed with the service's name
               (the same as COORDBUS_START_VERBOSE=1)
  --no-build   start what dist/ holds, without building first
Ports: <SERVICE>_HTTP_PORT per service (e.g. FANOUT_PUBLISHER_HTTP_PORT=9100), HTTP_PORT=0 for
free ports everywhere, HTTP_HOST for the address they bind. See README "Configuration".`;
/** A service log past this many bytes becomes <file>.1 (the previous .1 is dropped). */
const LOG_MAX_BYTES = 10 * 1024 * 1024;
/** Lines of a service's log printed when it fails to start or dies. */
const TAIL_LINES = 30;

function parseArgs(argv) {
  const flags = { verbose: false, build: true };
  for (const a of argv) {
    if (a === '--verbose' || a === '-v') flags.verbose = true;
    else if (a === '--no-build') flags.build = false;
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else {
      console.error(`coordbus: unknown argument ${JSON.stringify(a)}\n${USAGE}`);
      process.exit(2);
    }
  }
  return flags;
}

/**
 * Everything npm start reads from the environment, through libs/config (the one parser and the
 * variables' one definition), so a bad value fails here the way it would in a service: exit 2
 * naming the variable. Read after the build: the config lib is loaded from dist/.
 */
function readConfig(config, env, services) {
  const problems = [];
  const get = (v, fallback) => {
    const r = config.readVar(env, v, fallback);
    if (r.ok) return r.value;
    problems.push(r.problem);
    return r.fallback;
  };
  const S = config.START_VARS;
  const redisUrl = get(config.SHARED_VARS.REDIS_URL);
  const sharedPort = get(config.SHARED_VARS.HTTP_PORT, -1);
  if (sharedPort > 0)
    problems.push(
      `HTTP_PORT=${env.HTTP_PORT} would be the port of all ${services.length} services: set one per service ` +
        `(${services.map((s) => config.startPortVarName(s.name)).join(', ')}), or HTTP_PORT=0 for free ports`,
    );
  const ports = new Map(
    services.map((s) => [s.name, get(S[config.startPortVarName(s.name)], sharedPort === 0 ? 0 : undefined)]),
  );
  const cfg = {
    redisUrl,
    ports,
    // The user's directory is taken from where they are; the default lives in the checkout.
    dataDir: resolve(env.COORDBUS_DATA_DIR ? process.cwd() : root, get(S.COORDBUS_DATA_DIR)),
    verbose: get(S.COORDBUS_START_VERBOSE),
    readyTimeoutMs: get(S.COORDBUS_START_TIMEOUT),
  };
  if (problems.length) {
    console.error(`coordbus: invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    process.exit(2);
  }
  return cfg;
}

/**
 * A service's log file, appended to and bounded: past LOG_MAX_BYTES (also when found so at start)
 * it becomes <file>.1 and a new file begins, so a long-running `npm start` never fills the disk.
 */
class ServiceLog {
  constructor(file) {
    this.file = file;
    this.open();
    if (this.size >= LOG_MAX_BYTES) this.rotate();
  }
  open() {
    this.fd = openSync(this.file, 'a', 0o600);
    this.size = fstatSync(this.fd).size;
  }
  rotate() {
    closeSync(this.fd);
    renameSync(this.file, `${this.file}.1`);
    this.open();
  }
  write(text) {
    const buf = Buffer.from(text);
    if (this.size > 0 && this.size + buf.length > LOG_MAX_BYTES) this.rotate();
    writeSync(this.fd, buf);
    this.size += buf.length;
  }
  /** The last `n` lines (from the rotated file too when the current one is shorter). */
  tail(n = TAIL_LINES) {
    const read = (f) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : []);
    let lines = read(this.file);
    if (lines.length < n) lines = [...read(`${this.file}.1`), ...lines];
    return lines.slice(-n);
  }
}

/** Calls `onLines` with each batch of complete lines of `stream` (a last partial line at its end). */
function eachLines(stream, onLines) {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    const text = rest + chunk;
    const cut = text.lastIndexOf('\n');
    if (cut < 0) {
      rest = text;
      return;
    }
    rest = text.slice(cut + 1);
    onLines(text.slice(0, cut).split('\n'));
  });
  stream.on('end', () => {
    if (rest) onLines([rest]);
    rest = '';
  });
}

function ping(host, port, timeoutMs = 500) {
  return new Promise((done) => {
    const sock = new Socket();
    const finish = (ok) => {
      sock.destroy();
      done(ok);
    };
    sock.setTimeout(timeoutMs, () => finish(false));
    sock.once('error', () => finish(false));
    sock.connect(port, host, () => sock.write('PING\r\n'));
    sock.once('data', (d) => finish(d.toString().startsWith('+PONG') || d.toString().startsWith('-NOAUTH')));
  });
}

async function ensureRedis(redisUrl, dataDir, shown) {
  const url = new URL(redisUrl);
  const host = url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = Number(url.port || 6379);
  if (await ping(host, port)) return { started: null, where: shown };
  if (!['127.0.0.1', 'localhost', '::1'].includes(host)) {
    throw new Error(`nothing answers at REDIS_URL=${shown}; start Redis there or unset REDIS_URL`);
  }
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0) {
    throw new Error(
      'no Redis answers at REDIS_URL and redis-server is not on PATH: install Redis >= 7 or set REDIS_URL',
    );
  }
  const dir = join(dataDir, 'redis');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', ''],
    { stdio: 'ignore', detached: true },
  );
  for (let i = 0; i < 200 && !(await ping(host, port)); i++) await sleep(50);
  if (!(await ping(host, port)))
    throw new Error(`started redis-server on port ${port} but it does not answer`);
  return { started: child, where: `${shown} (started here, AOF on, data in ${dir})` };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** GET `url` → { status, body } (status 0 and the error when nothing answered). */
function getOnce(url, timeoutMs = 2000) {
  return new Promise((done) => {
    const req = httpGet(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => done({ status: res.statusCode, body }));
      res.on('error', (err) => done({ status: 0, body: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => done({ status: 0, body: err.message }));
  });
}

/** A path as the user would type it from here: relative when under the current directory. */
function shownPath(p) {
  const rel = relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
}

async function main() {
  const flags = parseArgs(process.argv.slice(2));
  if (flags.build) {
    const build = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], {
      stdio: 'inherit',
      cwd: root,
    });
    if (build.status !== 0) process.exit(build.status ?? 1);
  }
  const configLib = join(root, 'dist', 'libs', 'config', 'src', 'index.js');
  if (!existsSync(configLib))
    throw new Error(`${configLib} is missing: run npm run build (or npm start without --no-build)`);
  const config = require(configLib);
  const services = config.SERVICES;
  const cfg = readConfig(config, process.env, services);
  const verbose = flags.verbose || cfg.verbose;
  const { dataDir } = cfg;
  // Not <data dir>/logs: the local log-tailer watches that directory (headroom.log), and every
  // service line written there would wake it.
  const logDir = join(dataDir, 'service-logs');
  mkdirSync(logDir, { recursive: true, mode: 0o700 });

  // Local defaults that make each service useful on one machine.
  const localEnv = {
    'telemetry-archivist': { ARCHIVIST_DATA_DIR: process.env.ARCHIVIST_DATA_DIR || join(dataDir, 'archive') },
    'log-tailer': { TAILER_CONFIG: process.env.TAILER_CONFIG || ensureTailerConfig(dataDir) },
  };
  // The console's operator token (actions: send, dispatch, force-release, cancel, re-drive): the
  // user's COORDBUS_OPERATOR_TOKEN(_FILE) when set, else one made on first run and kept (mode 0600)
  // in the data dir, so the local console can act after logging in with it. Never printed.
  const ownToken = !process.env.COORDBUS_OPERATOR_TOKEN && !process.env.COORDBUS_OPERATOR_TOKEN_FILE;
  const tokenFile = join(dataDir, 'operator-token');
  if (ownToken) {
    if (!existsSync(tokenFile))
      writeFileSync(tokenFile, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
    localEnv['telemetry-archivist'].COORDBUS_OPERATOR_TOKEN_FILE = tokenFile;
  }

  const shownRedis = config.redactUrl(cfg.redisUrl);
  const redis = await ensureRedis(cfg.redisUrl, dataDir, shownRedis);
  const started = Date.now();
  /** @type {{ svc: any, child: import('node:child_process').ChildProcess, log: ServiceLog, url: string | null, ready: boolean }[]} */
  const running = [];
  let stopping = false;

  function stop(code) {
    if (stopping) return;
    stopping = true;
    process.exitCode = code;
    const alive = running.filter(({ child }) => child.exitCode === null && child.signalCode === null);
    if (alive.length)
      console.error(
        `coordbus: stopping ${alive.map((r) => r.svc.name).join(', ')}${code === 0 ? ' (Ctrl-C again to kill them now)' : ''}`,
      );
    let left = alive.length;
    const finish = () => {
      if (redis.started) redis.started.kill('SIGTERM');
      if (code === 0) console.error('coordbus: stopped');
    };
    if (!left) return finish();
    for (const { child } of alive) {
      child.once('exit', () => --left === 0 && finish());
      child.kill('SIGTERM');
    }
  }
  /**
   * Ctrl-C once: graceful stop (each service drains and acks). Again, a second or more later: kill
   * now. The same Ctrl-C often arrives twice at once (the terminal signals the whole foreground
   * group, and npm forwards it too), which must not count as the second.
   */
  let firstSignalAt = 0;
  const onSignal = () => {
    if (!stopping) {
      firstSignalAt = Date.now();
      return stop(0);
    }
    if (!firstSignalAt) firstSignalAt = Date.now();
    if (Date.now() - firstSignalAt < 1000) return;
    console.error('coordbus: killing every service now');
    for (const { child } of running)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (redis.started) redis.started.kill('SIGKILL');
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Whatever ends this script, no service outlives it.
  process.on('exit', () => {
    for (const { child } of running)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  const fail = (entry, why) => {
    if (stopping) return;
    console.error(`coordbus: ${entry.svc.name} ${why}; stopping everything.`);
    const lines = entry.log.tail();
    console.error(
      lines.length
        ? `  last ${lines.length} lines of ${shownPath(entry.log.file)}:\n${lines.map((l) => `    ${l}`).join('\n')}`
        : `  (${shownPath(entry.log.file)} is empty)`,
    );
    stop(1);
  };

  for (const svc of services) {
    const main = join(root, 'dist', 'apps', svc.name, 'main.js');
    if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build`);
    const log = new ServiceLog(join(logDir, `${svc.name}.log`));
    const child = spawn(process.execPath, [main], {
      cwd: root,
      env: {
        ...process.env,
        REDIS_URL: cfg.redisUrl,
        HTTP_PORT: String(cfg.ports.get(svc.name)),
        ...localEnv[svc.name],
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Own process group: Ctrl-C reaches only this script, which then stops each service once.
      detached: true,
    });
    const entry = { svc, child, log, url: null, ready: false };
    running.push(entry);
    const prefix = `${svc.name.padEnd(20)}| `;
    for (const stream of [child.stdout, child.stderr]) {
      eachLines(stream, (lines) => {
        log.write(`${lines.join('\n')}\n`);
        if (verbose) process.stdout.write(lines.map((l) => `${prefix}${l}\n`).join(''));
        // The start line carries the address the listener really bound (HTTP_PORT=0 included).
        if (entry.url === null)
          for (const line of lines) {
            if (!line.includes('"http"')) continue;
            try {
              const rec = JSON.parse(line);
              if (typeof rec.http === 'string' && rec.msg === `${svc.name} started`) entry.url = rec.http;
            } catch {
              /* not a JSON log line */
            }
          }
      });
    }
    child.on('exit', (code, signal) => {
      if (!stopping)
        fail(entry, `exited (${signal ?? `code ${code}`})${entry.ready ? '' : ' before it was ready'}`);
    });
  }

  // The banner only once every service answers /readyz 200: what it lists works when it appears.
  const deadline = started + cfg.readyTimeoutMs;
  await Promise.all(
    running.map(async (entry) => {
      let last = 'it has not logged its start line yet';
      while (!stopping && !entry.ready) {
        if (Date.now() > deadline) {
          fail(
            entry,
            `is not ready after ${config.formatDuration(cfg.readyTimeoutMs)} (${last}; COORDBUS_START_TIMEOUT)`,
          );
          return;
        }
        if (entry.url) {
          const r = await getOnce(`${entry.url}/readyz`);
          if (r.status === 200) entry.ready = true;
          else
            last = r.status ? `/readyz answered ${r.status}: ${r.body.slice(0, 300)}` : `/readyz: ${r.body}`;
        }
        if (!entry.ready) await sleep(200);
      }
    }),
  );
  if (stopping) return;

  const secs = ((Date.now() - started) / 1000).toFixed(1);
  const archivist = running.find((r) => r.svc.name === 'telemetry-archivist');
  const out = [`\ncoordbus is ready (${running.length} services, ${secs} s):`];
  if (archivist)
    out.push(
      `  fleet console        ${archivist.url}/   (to act, log in with ${ownToken ? `the token in ${shownPath(tokenFile)}` : 'your COORDBUS_OPERATOR_TOKEN'})`,
    );
  out.push(`  redis                ${redis.where}`);
  const width = Math.max(...running.map((r) => r.url.length));
  for (const { svc, url, log } of running)
    out.push(`  ${svc.name.padEnd(20)} ${url.padEnd(width)}  log: ${shownPath(log.file)}`);
  out.push(
    '  every service serves /healthz /readyz /metrics',
    '  CLI                  ./bin/coordbus --help   (coord, tail, replay, jobs, hooks)',
    verbose
      ? 'Service logs follow, prefixed with their service. Press Ctrl-C to stop.\n'
      : `Service logs go to ${shownPath(logDir)}/ (npm start -- --verbose also shows them here). Press Ctrl-C to stop.\n`,
  );
  console.log(out.join('\n'));
}

/** First run: a tailer config following the headroom proxy log under the data dir (edit it, or set TAILER_CONFIG). */
function ensureTailerConfig(dataDir) {
  const file = join(dataDir, 'log-tailer.yml');
  if (existsSync(file)) return file;
  mkdirSync(join(dataDir, 'logs'), { recursive: true });
  writeFileSync(
    file,
    '# Files the log-tailer follows (npm start). One entry per file; see README "log-tailer".\n' +
      'targets:\n  - path: logs/headroom.log\n    observer: headroom-stage-timings\n    source: headroom\n',
  );
  return file;
}

main().catch((err) => {
  console.error(`coordbus: ${err.message}`);
  process.exit(1);
});
