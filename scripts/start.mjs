#!/usr/bin/env node
// `npm start`: the whole system on one machine. Builds, makes sure a Redis answers at REDIS_URL
// (starting a local redis-server with AOF on under .coordbus-data/redis when nothing does and the
// URL is local), starts every service, prints what runs where, and stops everything on Ctrl-C.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, existsSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = resolve(fileURLToPath(import.meta.url), '..', '..');
const dataDir = resolve(process.env.COORDBUS_DATA_DIR ?? join(root, '.coordbus-data'));
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Every service and its default HTTP port (libs/config/src/service-table.json is the one list). */
const SERVICES = createRequire(import.meta.url)('../libs/config/src/service-table.json');
/** Local defaults that make each service useful on one machine. */
const LOCAL_ENV = {
  'telemetry-archivist': { ARCHIVIST_DATA_DIR: join(dataDir, 'archive') },
  'log-tailer': { TAILER_CONFIG: process.env.TAILER_CONFIG ?? join(dataDir, 'log-tailer.yml') },
};

/**
 * The console's operator token (actions: send, dispatch, force-release, cancel, re-drive): the
 * user's COORDBUS_OPERATOR_TOKEN when set, else one made on first run and kept (mode 0600) in the
 * data dir, so the local console can act after logging in with it. Never printed.
 */
function operatorTokenFile() {
  const file = join(dataDir, 'operator-token');
  if (
    !process.env.COORDBUS_OPERATOR_TOKEN &&
    !process.env.COORDBUS_OPERATOR_TOKEN_FILE &&
    !existsSync(file)
  ) {
    writeFileSync(file, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
  }
  return file;
}

/** First run: a tailer config following the headroom proxy log under the data dir (edit it, or set TAILER_CONFIG). */
function ensureTailerConfig() {
  const file = join(dataDir, 'log-tailer.yml');
  if (process.env.TAILER_CONFIG || existsSync(file)) return;
  mkdirSync(join(dataDir, 'logs'), { recursive: true });
  writeFileSync(
    file,
    '# Files the log-tailer follows (npm start). One entry per file; see README "log-tailer".\n' +
      'targets:\n  - path: logs/headroom.log\n    observer: headroom-stage-timings\n    source: headroom\n',
  );
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

async function ensureRedis() {
  const url = new URL(redisUrl);
  const host = url.hostname || '127.0.0.1';
  const port = Number(url.port || 6379);
  if (await ping(host, port)) return { started: null, where: redisUrl };
  if (!['127.0.0.1', 'localhost', '::1'].includes(host)) {
    throw new Error(`nothing answers at REDIS_URL=${redisUrl}; start Redis there or unset REDIS_URL`);
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
  for (let i = 0; i < 200 && !(await ping(host, port)); i++) await new Promise((r) => setTimeout(r, 50));
  if (!(await ping(host, port)))
    throw new Error(`started redis-server on port ${port} but it does not answer`);
  return { started: child, where: `${redisUrl} (started here, AOF on, data in ${dir})` };
}

async function main() {
  const build = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], {
    stdio: 'inherit',
    cwd: root,
  });
  if (build.status !== 0) process.exit(build.status ?? 1);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  ensureTailerConfig();
  const tokenFile = operatorTokenFile();
  if (!process.env.COORDBUS_OPERATOR_TOKEN && !process.env.COORDBUS_OPERATOR_TOKEN_FILE) {
    LOCAL_ENV['telemetry-archivist'].COORDBUS_OPERATOR_TOKEN_FILE = tokenFile;
  }
  const redis = await ensureRedis();
  const children = [];
  let stopping = false;
  for (const svc of SERVICES) {
    const main = join(root, 'dist', 'apps', svc.name, 'main.js');
    if (!existsSync(main)) throw new Error(`${main} is missing after the build`);
    const child = spawn(process.execPath, [main], {
      cwd: root,
      env: { ...process.env, REDIS_URL: redisUrl, HTTP_PORT: String(svc.port), ...LOCAL_ENV[svc.name] },
      stdio: ['ignore', 'inherit', 'inherit'],
      // Own process group: Ctrl-C reaches only this script, which then stops each service once, in order.
      detached: true,
    });
    child.on('exit', (code, signal) => {
      if (stopping) return;
      console.error(`coordbus: ${svc.name} exited (${signal ?? code}); stopping everything`);
      stop(1);
    });
    children.push({ svc, child });
  }
  const archivist = SERVICES.find((s) => s.name === 'telemetry-archivist');
  console.log('\ncoordbus is running:');
  console.log(
    `  fleet console        http://127.0.0.1:${archivist.port}/   (to act, log in with ${LOCAL_ENV['telemetry-archivist'].COORDBUS_OPERATOR_TOKEN_FILE ? `the token in ${tokenFile}` : 'COORDBUS_OPERATOR_TOKEN'})`,
  );
  console.log(`  redis                ${redis.where}`);
  for (const { svc } of children)
    console.log(`  ${svc.name.padEnd(20)} http://127.0.0.1:${svc.port}  (/healthz /readyz /metrics)`);
  console.log('  CLI                  ./bin/coordbus --help   (coord, tail, replay, jobs, hooks)');
  console.log('Press Ctrl-C to stop.\n');

  function stop(code = 0) {
    if (stopping) return;
    stopping = true;
    const alive = children.filter(({ child }) => child.exitCode === null && child.signalCode === null);
    let left = alive.length;
    const finish = () => {
      if (redis.started) redis.started.kill('SIGTERM');
      process.exitCode = code;
    };
    if (!left) return finish();
    for (const { child } of alive) {
      child.once('exit', () => --left === 0 && finish());
      child.kill('SIGTERM');
    }
  }
  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(0));
  // Whatever ends this script, no service outlives it.
  process.on('exit', () => {
    for (const { child } of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
}

main().catch((err) => {
  console.error(`coordbus: ${err.message}`);
  process.exit(1);
});
