import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { Browser, chromium } from 'playwright-core';
import { Keyspace } from '@coordbus/envelope';
import {
  ServiceProcess,
  cleanupNamespace,
  startService,
  testKeyspace,
  testRedisUrl,
} from '@coordbus/testing';

jest.setTimeout(240_000);

const SESSIONS = 1000;

// Issue 16: the page never holds one DOM row per session of a large fleet; it pages them.
// (How fast it loads is measured by bench/console, not asserted here.)
describe('fleet console with 1 000 live sessions (built service, real browser)', () => {
  let ks: Keyspace;
  let redis: Redis;
  let archivist: ServiceProcess;
  let browser: Browser;
  let dir: string;

  beforeAll(async () => {
    ks = testKeyspace('console-bounded');
    redis = new Redis(testRedisUrl());
    const pipe = redis.pipeline();
    const now = Date.now();
    for (let i = 0; i < SESSIONS; i++) {
      const id = `fleet-${String(i).padStart(4, '0')}`;
      pipe.hset(ks.coordKey(`session:${id}`), {
        session_id: id,
        host: 'h',
        pid: String(i),
        role: 'dev',
        task: `task ${i}`,
        registered_at: new Date(now).toISOString(),
        last_heartbeat: new Date(now - i).toISOString(),
        last_heartbeat_ms: String(now - i),
      });
      pipe.zadd(ks.coordKey('sessions'), now - i, id);
    }
    await pipe.exec();
    dir = mkdtempSync(join(tmpdir(), 'console-bounded-'));
    archivist = await startService(
      'telemetry-archivist',
      { REDIS_URL: testRedisUrl(), COORDBUS_NAMESPACE: ks.namespace, ARCHIVIST_DATA_DIR: dir },
      120_000,
    );
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await archivist?.stop();
    await cleanupNamespace(redis, ks);
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows one page of 100 session rows and pages through all 1 000', async () => {
    const page = await browser.newPage();
    await page.goto(`${archivist.url}/#/sessions`);
    const rows = page.locator('[data-testid^="session-row-"]');
    await rows.first().waitFor({ timeout: 60_000 });
    expect(await rows.count()).toBe(100);
    const pager = page.locator('.pager span');
    expect(await pager.innerText()).toBe(`page 1 of 10 (${SESSIONS})`);
    // Newest heartbeat first: fleet-0000 leads page 1, fleet-0100 page 2, fleet-0999 ends page 10.
    expect(await rows.first().getAttribute('data-testid')).toBe('session-row-fleet-0000');
    await page.getByRole('button', { name: 'next ›' }).click();
    await page.locator('[data-testid="session-row-fleet-0100"]').waitFor();
    expect(await rows.count()).toBe(100);
    for (let i = 2; i < 10; i++) await page.getByRole('button', { name: 'next ›' }).click();
    await page.locator('[data-testid="session-row-fleet-0999"]').waitFor();
    expect(await rows.count()).toBe(100);
    expect(await pager.innerText()).toBe(`page 10 of 10 (${SESSIONS})`);
    expect(await page.locator('tr').count()).toBeLessThanOrEqual(101);
    await page.close();
  });
});
