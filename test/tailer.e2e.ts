import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { EnvelopeCodec, Keyspace, Schemas, TelemetryEvent } from '@coordbus/envelope';
import {
  cleanupNamespace,
  runServiceToExit,
  ServiceProcess,
  startService,
  testNamespace,
  testRedisUrl,
  waitFor,
} from '@coordbus/testing';

/**
 * The built log-tailer as a real process (`node dist/apps/log-tailer/main.js`; run `npm run build`
 * first): crash (SIGKILL) mid-burst and graceful restarts against real files and a real Redis.
 */
jest.setTimeout(90_000);

const codec = new EnvelopeCodec();
const pad = (n: number, w = 2) => String(n).padStart(w, '0');
function line(seq: number, totalMs = 700): string {
  const d = new Date();
  const asctime = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())},${pad(d.getMilliseconds(), 3)}`;
  return `${asctime} - headroom.proxy - INFO - [hr_${seq}] STAGE_TIMINGS {"event": "stage_timings", "request_id": "seq-${seq}", "stages": {"read_request_json": 1.0, "deep_copy": 0.1, "compression_first_stage": ${totalMs - 2}, "total_pre_upstream": ${totalMs}}}\n`;
}
const lines = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => line(from + i)).join('');

describe('log-tailer as a process', () => {
  let redis: Redis;
  let dir: string;
  let keyspace: Keyspace;
  let logPath: string;
  let configPath: string;
  let svc: ServiceProcess | undefined;

  beforeEach(() => {
    redis = new Redis(testRedisUrl());
    dir = mkdtempSync(join(tmpdir(), 'tailer-e2e-'));
    mkdirSync(join(dir, 'logs'));
    logPath = join(dir, 'logs', 'proxy.log');
    keyspace = new Keyspace(testNamespace('tailer-e2e'));
    configPath = join(dir, 'tailer.yaml');
    writeFileSync(
      configPath,
      `reconcile_ms: 1000\ntargets:\n  - path: ${logPath}\n    source: headroom\n    event: headroom.overhead\n    threshold_ms: 500\n    quiet_ms: 60000\n    from_start: true\n`,
    );
  });
  afterEach(async () => {
    await svc?.stop('SIGKILL');
    svc = undefined;
    await cleanupNamespace(redis, keyspace);
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  const env = () => ({
    REDIS_URL: testRedisUrl(),
    COORDBUS_NAMESPACE: keyspace.namespace,
    TAILER_CONFIG: configPath,
  });
  const events = async (): Promise<TelemetryEvent[]> =>
    (await redis.xrange(keyspace.telemetryEvents, '-', '+')).map(([, f]) =>
      codec.decode(Schemas.telemetry, f),
    );
  const seqs = async () =>
    (await events())
      .filter((e) => e.detail.kind === 'breach')
      .map((e) => Number(String(e.detail.request_id).slice(4)));
  const expectExactly = async (n: number) => {
    await waitFor(
      async () => (await redis.xlen(keyspace.telemetryEvents)) >= n,
      `${n} breach events`,
      30_000,
    );
    const got = (await seqs()).sort((a, b) => a - b);
    expect(got.length).toBe(n);
    expect(got).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  };

  it('SIGKILL during a burst, then restart: nothing lost, nothing doubled, the open episode carried over', async () => {
    writeFileSync(logPath, '');
    svc = await startService('log-tailer', env());
    const total = 6000;
    let written = 0;
    const burst = async (to: number) => {
      while (written < to) {
        const next = Math.min(written + 100, to);
        appendFileSync(logPath, lines(written + 1, next));
        written = next;
        await new Promise((r) => setTimeout(r, 25));
      }
    };
    const writing = burst(total);
    await waitFor(
      async () => (await redis.xlen(keyspace.telemetryEvents)) >= 500,
      'the tailer to be mid-burst',
      30_000,
    );
    expect(await svc.stop('SIGKILL')).toBe('SIGKILL');
    const atKill = await redis.xlen(keyspace.telemetryEvents);
    await writing;
    expect(atKill).toBeLessThan(total); // it really died mid-burst
    svc = await startService('log-tailer', env());
    await expectExactly(total);
    // Graceful stop flushes the one episode: its count spans the crash (restored from the checkpoint).
    expect(await svc.stop('SIGTERM')).toBe(0);
    svc = undefined;
    const episodes = (await events()).filter((e) => e.detail.kind === 'episode');
    expect(episodes).toHaveLength(1);
    expect(episodes[0]).toMatchObject({
      event: 'headroom.overhead.episode',
      status: 'degraded',
      detail: { count: total },
    });
  });

  it('graceful restart duplicates nothing; metrics and health answer', async () => {
    writeFileSync(logPath, lines(1, 300));
    svc = await startService('log-tailer', env());
    await expectExactly(300);
    const ready = await waitFor(
      async () => ((await fetch(`${svc!.url}/readyz`)).status === 200 ? true : undefined),
      '/readyz',
    );
    expect(ready).toBe(true);
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    expect(metrics).toMatch(/coordbus_tailer_lines_read_total\{source="headroom",service="log-tailer"\} 300/);
    expect(metrics).toMatch(
      /coordbus_tailer_events_emitted_total\{source="headroom",kind="breach",service="log-tailer"\} 300/,
    );
    expect(metrics).toContain('coordbus_tailer_checkpoint_lag_bytes');
    expect(await svc.stop('SIGTERM')).toBe(0);
    appendFileSync(logPath, lines(301, 400));
    svc = await startService('log-tailer', env());
    await expectExactly(400);
    appendFileSync(logPath, lines(401, 450));
    await expectExactly(450);
  });

  it('exits non-zero when its watched directory disappears (so a supervisor restarts it)', async () => {
    writeFileSync(logPath, lines(1, 3));
    svc = await startService('log-tailer', env());
    await expectExactly(3);
    rmSync(join(dir, 'logs'), { recursive: true, force: true });
    const code = await svc.stop('SIGCONT'); // harmless signal: just wait for it to exit by itself
    svc = undefined;
    expect(code).toBe(1);
  });

  it('a FIFO at the watched path blocks neither new lines nor SIGTERM (stops within SHUTDOWN_TIMEOUT_MS)', async () => {
    writeFileSync(logPath, lines(1, 3));
    svc = await startService('log-tailer', { ...env(), SHUTDOWN_TIMEOUT_MS: '3000' });
    await expectExactly(3);
    const fifoOver = () => {
      const tmp = join(dir, 'logs', 'fifo.tmp');
      execFileSync('mkfifo', [tmp]);
      renameSync(tmp, logPath); // what a hostile or confused writer does
    };
    const refusals = () => svc!.lines.filter((l) => l.includes('not a regular file')).length;
    fifoOver();
    await waitFor(async () => refusals() >= 1, 'a warning that the FIFO is refused', 10_000);
    // A regular file comes back: its lines flow (read from 0).
    const tmp = join(dir, 'logs', 'file.tmp');
    writeFileSync(tmp, lines(4, 6));
    renameSync(tmp, logPath);
    await expectExactly(6);
    fifoOver();
    await waitFor(async () => refusals() >= 2, 'the second FIFO refused', 10_000);
    const t0 = Date.now();
    expect(await svc.stop('SIGTERM')).toBe(0);
    svc = undefined;
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('a watched directory missing at start is waited for (not ready, no exit), then its lines flow', async () => {
    rmSync(join(dir, 'logs'), { recursive: true, force: true });
    svc = await startService('log-tailer', env());
    const ready = async () => {
      const res = await fetch(`${svc!.url}/readyz`);
      return { status: res.status, body: (await res.json()) as { checks: Record<string, string> } };
    };
    const status = await waitFor(async () => {
      const r = await ready();
      return r.body.checks.followers?.includes('waiting for directory') ? r.status : undefined;
    }, '/readyz to say it waits for the directory');
    expect(status).toBe(503);
    expect(svc.lines.some((l) => l.includes('watched directory does not exist yet'))).toBe(true);
    await new Promise((r) => setTimeout(r, 1500));
    expect(svc.child.exitCode).toBeNull();
    mkdirSync(join(dir, 'logs'));
    writeFileSync(logPath, lines(1, 4));
    await expectExactly(4);
    await waitFor(async () => (await ready()).status === 200, '/readyz 200 once following');
  });

  it('refuses an unknown observer with exit 2, naming the known ones', async () => {
    writeFileSync(configPath, `targets:\n  - path: ${logPath}\n    observer: nginx\n    quiet_ms: 10\n`);
    const { code, output } = await runServiceToExit('log-tailer', env());
    expect(code).toBe(2);
    expect(output).toContain('unknown observer "nginx"; known observers: headroom-stage-timings');
    expect(output).toContain('quiet_ms');
  });
});
