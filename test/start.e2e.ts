import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import {
  cleanupNamespace,
  freePort,
  REPO_ROOT,
  testNamespace,
  testRedisUrl,
  waitFor,
} from '@coordbus/testing';
import { SERVICES } from '@coordbus/config';

/**
 * `npm start` as a user runs it (scripts/start.mjs as a real process, `--no-build`: the e2e run
 * has built dist/ already): services' logs go to files, the banner comes once every service is
 * ready and lists where each one really listens, Ctrl-C stops them all.
 */
jest.setTimeout(600_000);

const START = join(REPO_ROOT, 'scripts', 'start.mjs');
const NAMES = SERVICES.map((s) => s.name);
/** Under load 30 five Nest services take a while; the script's own bound is what the test checks. */
const BANNER_WITHIN_MS = 240_000;

interface Run {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | string>;
}

/** The environment a user's shell would have, minus anything of ours that would change the run. */
function baseEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env))
    if (/_HTTP_PORT$|^HTTP_(PORT|HOST)$|^COORDBUS_|^TAILER_|^ARCHIVIST_|^LOG_LEVEL$/.test(k)) delete env[k];
  return { ...env, ...extra };
}

function start(args: string[], env: NodeJS.ProcessEnv): Run {
  const child = spawn(process.execPath, [START, '--no-build', ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((r) => child.once('exit', (code, sig) => r(code ?? sig ?? -1)));
  return { child, out: () => out, err: () => err, exited };
}

/** GET → status (0 when nothing answers). */
async function status(url: string): Promise<number> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
    await r.arrayBuffer();
    return r.status;
  } catch {
    return 0;
  }
}

/** The banner's service lines: name → { url, log }. */
function bannerServices(out: string): Map<string, { url: string; log: string }> {
  const found = new Map<string, { url: string; log: string }>();
  for (const m of out.matchAll(/^ {2}([a-z-]+) +(http:\/\/\S+) +log: (\S+)$/gm))
    found.set(m[1], { url: m[2], log: m[3] });
  return found;
}

/** The pid each service logged (pino's `pid`), from its log file. */
function loggedPid(file: string): number {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    const rec = JSON.parse(line) as { pid?: number };
    if (rec.pid) return rec.pid;
  }
  throw new Error(`${file} has no JSON log line with a pid`);
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitForBanner(run: Run): Promise<void> {
  await waitFor(
    () => {
      if (run.child.exitCode !== null)
        throw new Error(`start.mjs exited ${run.child.exitCode}:\n${run.err()}`);
      return run.out().includes('coordbus is ready');
    },
    'the banner',
    BANNER_WITHIN_MS,
    100,
  );
  // The banner is printed in one write; wait for its last line all the same.
  await waitFor(() => run.out().includes('Press Ctrl-C to stop.'), 'the end of the banner', 10_000);
}

describe('npm start (scripts/start.mjs)', () => {
  let redis: Redis;
  let dataDir: string;
  const namespace = testNamespace('start');
  const runs: Run[] = [];

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
    dataDir = mkdtempSync(join(tmpdir(), 'coordbus-start-'));
  });
  afterEach(async () => {
    // A failed test must not leave a system running.
    for (const run of runs.splice(0)) {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
      await run.exited;
    }
  });
  afterAll(async () => {
    await cleanupNamespace(redis, namespace);
    redis.disconnect();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const env = (extra: Record<string, string> = {}) =>
    baseEnv({
      REDIS_URL: testRedisUrl(),
      COORDBUS_NAMESPACE: namespace,
      COORDBUS_DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      ...extra,
    });

  it('prints the banner once every service is ready, with the URLs they really bind; logs go to files; SIGINT stops all', async () => {
    const fanoutPort = await freePort();
    // A log already over the bound from an earlier run is moved aside, not appended to.
    const logDir = join(dataDir, 'service-logs');
    mkdirSync(logDir, { recursive: true });
    writeFileSync(join(logDir, 'sentinel-subscriber.log'), 'x'.repeat(10 * 1024 * 1024 + 1));

    const run = start([], env({ HTTP_PORT: '0', FANOUT_PUBLISHER_HTTP_PORT: String(fanoutPort) }));
    runs.push(run);
    await waitForBanner(run);
    const listed = bannerServices(run.out());
    expect([...listed.keys()].sort()).toEqual([...NAMES].sort());
    // Every URL works the moment the banner is there: each /readyz is already 200.
    const ready = await Promise.all(NAMES.map((n) => status(`${listed.get(n)!.url}/readyz`)));
    expect(ready).toEqual(NAMES.map(() => 200));
    for (const n of NAMES) {
      const r = await fetch(`${listed.get(n)!.url}/healthz`);
      expect(await r.json()).toMatchObject({ status: 'ok', service: n });
    }
    // The per-service override went through; HTTP_PORT=0 gave the others ports the kernel picked.
    expect(listed.get('fanout-publisher')!.url).toBe(`http://127.0.0.1:${fanoutPort}`);
    for (const s of SERVICES.filter((x) => x.name !== 'fanout-publisher')) {
      const port = Number(new URL(listed.get(s.name)!.url).port);
      expect(port).toBeGreaterThan(0);
      expect(port).not.toBe(s.port);
    }
    // The console is the archivist's `/`.
    const archivist = listed.get('telemetry-archivist')!.url;
    expect(run.out()).toContain(`fleet console        ${archivist}/`);
    const page = await fetch(`${archivist}/`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);

    // Service logs are in their files, none on the terminal.
    expect(run.out()).not.toMatch(/"level":|"msg":/);
    expect(run.err()).not.toMatch(/"level":|"msg":/);
    const pids = new Map<string, number>();
    for (const n of NAMES) {
      const file = join(logDir, `${n}.log`);
      expect(listed.get(n)!.log.endsWith(join('service-logs', `${n}.log`))).toBe(true);
      expect(readFileSync(file, 'utf8')).toContain(`"msg":"${n} started"`);
      pids.set(n, loggedPid(file));
    }
    expect(statSync(join(logDir, 'sentinel-subscriber.log.1')).size).toBe(10 * 1024 * 1024 + 1);
    expect(statSync(join(logDir, 'sentinel-subscriber.log')).size).toBeLessThan(1024 * 1024);

    // Ctrl-C: every service stops gracefully (its own "stopped" line), the script exits 0.
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(0);
    for (const n of NAMES) {
      expect(alive(pids.get(n)!)).toBe(false);
      expect(readFileSync(join(logDir, `${n}.log`), 'utf8')).toContain(`"msg":"${n} stopped"`);
      expect(await status(`${listed.get(n)!.url}/healthz`)).toBe(0);
    }
    expect(run.out()).not.toMatch(/"level":/);
  });

  it('with --verbose streams every service log line, prefixed with its service, and still writes the files', async () => {
    const run = start(['--verbose'], env({ HTTP_PORT: '0' }));
    runs.push(run);
    await waitForBanner(run);
    const listed = bannerServices(run.out());
    for (const n of NAMES) {
      expect(run.out()).toMatch(new RegExp(`^${n} *\\| \\{.*"msg":"${n} started"`, 'm'));
      // Appended: the first test's run is still in the file (sentinel's too: it was rotated before that run).
      const log = readFileSync(join(dataDir, 'service-logs', `${n}.log`), 'utf8');
      expect(log.split(`"msg":"${n} started"`).length - 1).toBe(2);
    }
    expect(listed.size).toBe(NAMES.length);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    for (const n of NAMES) expect(run.out()).toMatch(new RegExp(`^${n} *\\| \\{.*"msg":"${n} stopped"`, 'm'));
  });

  it('a service that never becomes ready: no banner, it is named with the end of its log, the others are stopped, exit 1', async () => {
    const failDir = mkdtempSync(join(tmpdir(), 'coordbus-start-fail-'));
    try {
      // The tailer waits (not ready) for a directory that is never created.
      const tailerConfig = join(failDir, 'tailer.yml');
      writeFileSync(
        tailerConfig,
        `targets:\n  - path: ${join(failDir, 'never', 'x.log')}\n    observer: headroom-stage-timings\n`,
      );
      const run = start(
        [],
        env({
          COORDBUS_DATA_DIR: failDir,
          HTTP_PORT: '0',
          TAILER_CONFIG: tailerConfig,
          COORDBUS_START_TIMEOUT: '90s',
        }),
      );
      runs.push(run);
      expect(await run.exited).toBe(1);
      expect(run.out()).not.toContain('coordbus is ready');
      expect(run.err()).toMatch(/log-tailer is not ready after 1m30s \(\/readyz answered 503/);
      expect(run.err()).toContain(`last `);
      expect(run.err()).toMatch(/lines of .*service-logs\/log-tailer\.log:\n/);
      for (const n of NAMES) {
        const file = join(failDir, 'service-logs', `${n}.log`);
        expect(alive(loggedPid(file))).toBe(false);
      }
    } finally {
      rmSync(failDir, { recursive: true, force: true });
    }
  });

  it('a service that exits at start is named at once with its error; bad ports are refused before anything starts', async () => {
    const failDir = mkdtempSync(join(tmpdir(), 'coordbus-start-fail-'));
    try {
      const run = start(
        [],
        env({ COORDBUS_DATA_DIR: failDir, HTTP_PORT: '0', TAILER_CONFIG: join(failDir, 'missing.yml') }),
      );
      runs.push(run);
      expect(await run.exited).toBe(1);
      expect(run.out()).not.toContain('coordbus is ready');
      expect(run.err()).toMatch(/log-tailer exited \(code \d+\) before it was ready; stopping everything/);
      expect(run.err()).toContain('missing.yml');
      for (const n of NAMES) {
        const file = join(failDir, 'service-logs', `${n}.log`);
        if (existsSync(file) && readFileSync(file, 'utf8').includes('"pid"'))
          expect(alive(loggedPid(file))).toBe(false);
      }
    } finally {
      rmSync(failDir, { recursive: true, force: true });
    }

    const refused = (extra: Record<string, string>) =>
      spawnSync(process.execPath, [START, '--no-build'], {
        cwd: REPO_ROOT,
        env: env(extra),
        encoding: 'utf8',
      });
    const shared = refused({ HTTP_PORT: '9000' });
    expect(shared.status).toBe(2);
    expect(shared.stderr).toContain('FANOUT_PUBLISHER_HTTP_PORT');
    expect(shared.stderr).toContain('HTTP_PORT=0');
    const bad = refused({ LOG_TAILER_HTTP_PORT: 'abc' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('LOG_TAILER_HTTP_PORT must be an integer from 0 to 65535 (got "abc")');
  });
});
