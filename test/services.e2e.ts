import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import {
  cleanupNamespace,
  runServiceToExit,
  ServiceProcess,
  startService,
  testNamespace,
  testRedisUrl,
  waitFor,
} from '@coordbus/testing';
import { SERVICES as services } from '@coordbus/config';

/**
 * Every service, as a user runs it: the built process boots against a real Redis, answers
 * /healthz, /readyz and /metrics, refuses bad configuration naming the variable, and stops
 * cleanly on SIGTERM.
 */
jest.setTimeout(60_000);

describe.each(services.map((s) => s.name))('%s as a process', (name) => {
  let redis: Redis;
  let dataDir: string;
  const namespace = testNamespace(name);

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
    dataDir = mkdtempSync(join(tmpdir(), `coordbus-${name}-`));
    writeFileSync(
      join(dataDir, 'tailer.yml'),
      'targets:\n  - path: proxy.log\n    observer: headroom-stage-timings\n',
    );
  });
  afterAll(async () => {
    await cleanupNamespace(redis, namespace);
    redis.disconnect();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const env = () => ({
    REDIS_URL: testRedisUrl(),
    COORDBUS_NAMESPACE: namespace,
    ARCHIVIST_DATA_DIR: join(dataDir, 'archive'),
    COORD_ROOT: join(dataDir, 'coord'),
    TAILER_CONFIG: join(dataDir, 'tailer.yml'),
  });

  it('serves /healthz, /readyz and /metrics, then stops cleanly on SIGTERM', async () => {
    let svc: ServiceProcess | undefined;
    try {
      svc = await startService(name, env());
      const health = await fetch(`${svc.url}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok', service: name });
      const ready = await waitFor(async () => {
        const r = await fetch(`${svc!.url}/readyz`);
        return r.status === 200 ? r.json() : undefined;
      }, `${name} /readyz`);
      expect(ready).toMatchObject({ status: 'ready', checks: { redis: 'ok' } });
      const metrics = await (await fetch(`${svc.url}/metrics`)).text();
      expect(metrics).toContain(`coordbus_process_cpu_seconds_total{service="${name}"}`);
      const lines = svc.lines.filter((l) => l.startsWith('{'));
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
      expect(await svc.stop('SIGTERM')).toBe(0);
      svc = undefined;
    } finally {
      await svc?.stop('SIGKILL');
    }
  });

  it('reports not ready while Redis does not answer', async () => {
    const svc = await startService(name, { ...env(), REDIS_URL: 'redis://127.0.0.1:1' });
    try {
      const r = await fetch(`${svc.url}/readyz`);
      expect(r.status).toBe(503);
      expect(((await r.json()) as { checks: Record<string, string> }).checks.redis).not.toBe('ok');
    } finally {
      await svc.stop('SIGKILL');
    }
  });

  it('refuses bad configuration with exit 2, naming each bad variable', async () => {
    const { code, output } = await runServiceToExit(name, {
      ...env(),
      HTTP_PORT: 'eighty',
      REDIS_URL: 'http://nope',
    });
    expect(code).toBe(2);
    expect(output).toContain('HTTP_PORT must be an integer from 0 to 65535 (got "eighty")');
    expect(output).toContain('REDIS_URL must be a URL with scheme redis:// or rediss://');
  });
});
