import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { BrowserContext, Page, chromium } from 'playwright-core';
import { CoordStore } from '@coordbus/coord';
import { EnvelopeCodec, Keyspace, Schemas } from '@coordbus/envelope';
import {
  REPO_ROOT,
  ServiceProcess,
  cleanupNamespace,
  startService,
  testKeyspace,
  testRedisUrl,
  waitFor,
} from '@coordbus/testing';
import { COORD, COORDBUS, run } from './coord-helpers';

jest.setTimeout(240_000);

/** Debian's chromium (`.ci/run` installs it when missing); driven headless with a fresh profile. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SHOTS = join(REPO_ROOT, 'docs', 'console');
const OP = 'e2e-operator-token-0123456789';
const READ = 'e2e-read-token-0123456789';
const TTL_S = '3';
const codec = new EnvelopeCodec();

describe('fleet console in a real browser (built services)', () => {
  let ks: Keyspace;
  let redis: Redis;
  const services: ServiceProcess[] = [];
  const dirs: string[] = [];
  let archivist: ServiceProcess;
  let context: BrowserContext;
  let page: Page;
  let keeper: NodeJS.Timeout | undefined;

  const env = () => ({
    REDIS_URL: testRedisUrl(),
    COORDBUS_NAMESPACE: ks.namespace,
    COORD_SESSION_TTL: TTL_S,
  });
  const coord = (session: string, args: string[]) =>
    run(COORD, args, { env: { ...env(), COORD_SESSION_ID: session } });
  const coordbus = (args: string[]) => run(COORDBUS, args, { env: env(), timeoutMs: 90_000 });
  const tmp = (label: string) => {
    const d = mkdtempSync(join(tmpdir(), label));
    dirs.push(d);
    return d;
  };
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`) });
  const go = async (hash: string) => {
    await page.goto(`${archivist.url}/#/${hash}`);
    await page.locator('[data-testid="connection"]', { hasText: 'live' }).waitFor();
  };

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    ks = testKeyspace('console-e2e');
    redis = new Redis(testRedisUrl());
    archivist = await startService('telemetry-archivist', {
      ...env(),
      ARCHIVIST_DATA_DIR: tmp('console-archive-'),
      COORDBUS_OPERATOR_TOKEN: OP,
    });
    services.push(archivist);
    services.push(
      await startService('sentinel-subscriber', {
        ...env(),
        SENTINEL_CULL_INTERVAL_MS: '250',
        SENTINEL_BLOCK_MS: '200',
      }),
    );
    services.push(await startService('job-coordinator', { ...env(), JOBS_KILL_GRACE: '1s' }));
    context = await chromium.launchPersistentContext(tmp('console-chromium-'), {
      executablePath: CHROMIUM,
      args: ARGS,
      viewport: { width: 1400, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('dialog', (d) => void d.accept(d.type() === 'prompt' ? 'owner is gone (e2e)' : undefined));
  });

  afterAll(async () => {
    if (keeper) clearInterval(keeper);
    await context?.close();
    for (const s of services.reverse()) await s.stop();
    await cleanupNamespace(redis, ks);
    redis.disconnect();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('logs in as operator through the page', async () => {
    await go('sessions');
    await page.getByText('log in to act').click();
    await page.locator('[data-testid="login"] input[name="token"]').fill(OP);
    await page.locator('[data-testid="login"] button').click();
    await page.locator('.access', { hasText: 'operator' }).waitFor();
  });

  it('with a read token set, the page refuses without it and opens with it', async () => {
    const locked = await startService(
      'telemetry-archivist',
      {
        ...env(),
        ARCHIVIST_DATA_DIR: tmp('console-locked-'),
        COORDBUS_API_TOKEN: READ,
      },
      60_000,
    );
    services.push(locked);
    const p = await context.newPage();
    await p.goto(`${locked.url}/`);
    await p.locator('[data-testid="login"]').waitFor();
    expect(await p.locator('[data-testid^="session-row-"]').count()).toBe(0);
    expect((await p.request.get(`${locked.url}/v1/console/snapshot`)).status()).toBe(401);
    await p.screenshot({ path: join(SHOTS, 'login.png') });
    await p.locator('[data-testid="login"] input[name="token"]').fill(READ);
    await p.locator('[data-testid="login"] button').click();
    await p.locator('[data-testid="connection"]', { hasText: 'live' }).waitFor();
    expect(await p.locator('.access').innerText()).toContain('read-only');
    await p.close();
    // A second archivist in the same namespace joins the `archivist` group and would take half of
    // every later entry into its own archive: the page under test would miss them.
    await locked.stop('SIGTERM');
    services.splice(services.indexOf(locked), 1);
  });

  it('a session appears within 1 s of `coord register`, and a culled session turns culled', async () => {
    await go('sessions');
    // From the moment `coord register` has returned (the session exists) to the row on the page.
    expect((await coord('alice', ['register', '--task', 'refactor auth', '--role', 'worker'])).code).toBe(0);
    const t0 = Date.now();
    const row = page.locator('[data-testid="session-row-alice"]');
    await row.waitFor({ timeout: 5000 });
    const appearedMs = Date.now() - t0;
    process.stdout.write(`console: session row appeared ${appearedMs} ms after coord register returned\n`);
    expect(appearedMs).toBeLessThan(1000);
    await expect(row.getAttribute('data-state')).resolves.toBe('live');
    expect(await row.innerText()).toContain('refactor auth');

    // bob keeps heartbeating; carol goes silent and is culled by the sentinel after the TTL.
    expect((await coord('bob', ['register', '--task', 'write tests', '--role', 'tester'])).code).toBe(0);
    expect((await coord('carol', ['register', '--task', 'docs'])).code).toBe(0);
    // Heartbeats from this process (a CLI process per beat can take longer than the TTL on a loaded machine).
    const store = new CoordStore(redis, { keyspace: ks });
    keeper = setInterval(() => {
      void store.heartbeat('alice', { phase: 'edit' }).catch(() => undefined);
      void store.heartbeat('bob').catch(() => undefined);
    }, 500);
    const carol = page.locator('[data-testid="session-row-carol"]');
    await carol.waitFor();
    await waitFor(
      async () => (await carol.getAttribute('data-state')) === 'culled',
      'carol to turn culled',
      20_000,
      200,
    );
    expect(await page.locator('[data-testid="session-row-bob"]').getAttribute('data-state')).toBe('live');
  });

  it('a lock conflict shows both parties, and the operator force-releases the lock with a reason', async () => {
    expect((await coord('alice', ['lock', 'src/auth.ts', '--reason', 'editing'])).code).toBe(0);
    expect((await coord('bob', ['lock', 'src/auth.ts'])).code).toBe(3);
    await go('locks');
    const conflict = page.locator('[data-testid="conflict-row"]', { hasText: 'src/auth.ts' }).first();
    await conflict.waitFor();
    const text = await conflict.innerText();
    expect(text).toContain('bob');
    expect(text).toContain('alice');
    await shot('locks');
    await page.locator('[data-testid="lock-row-src/auth.ts"] [data-testid="force-release"]').click();
    await page.locator('[data-testid="lock-row-src/auth.ts"]').waitFor({ state: 'detached' });
    await go('audit');
    await page.locator('[data-testid="audit"] tr', { hasText: 'owner is gone (e2e)' }).waitFor();
    await shot('act-audit');
  });

  it("a job's logs appear live, and cancel from the page ends it", async () => {
    const submitted = await coordbus([
      'jobs',
      'run',
      '--json',
      '--name',
      'slow-lint',
      '--shell',
      '--',
      'for i in 1 2 3 4 5 6; do echo "lint pass $i"; sleep 0.4; done; sleep 60',
    ]);
    expect(submitted.code).toBe(0);
    const job = (JSON.parse(submitted.stdout) as { id: string }).id;
    await go(`job/${job}`);
    const log = page.locator('[data-testid="job-log"]');
    await log.filter({ hasText: 'lint pass 1' }).waitFor({ timeout: 20_000 });
    // Lines keep arriving while the page is open (live, not a one-off load).
    await log.filter({ hasText: 'lint pass 4' }).waitFor({ timeout: 10_000 });
    await shot('job');
    await page.locator('[data-testid="cancel-job"]').click();
    await log.filter({ hasText: '[cancelled' }).waitFor({ timeout: 20_000 });
    const ls = await coordbus(['jobs', 'ls', '--json']);
    expect(
      (JSON.parse(ls.stdout) as { id: string; status: string }[]).find((j) => j.id === job)?.status,
    ).toBe('cancelled');
    await go('jobs');
    await page.locator(`[data-testid="job-row-${job}"]`, { hasText: 'cancelled' }).waitFor();
    await shot('jobs');
  });

  it('a dead letter shows its reason, and replay sends it back once', async () => {
    const bad = JSON.stringify({ v: 0, ts: new Date().toISOString(), level: 'loud', msg: 'bad entry (e2e)' });
    await redis.xadd(ks.coordIngest, '*', 'type', 'coord-op', 'v', '0', 'data', bad);
    await go('streams');
    const dead = page.locator('[data-testid="dead-row"]').first();
    await dead.waitFor({ timeout: 15_000 });
    expect(await dead.innerText()).toMatch(/Invalid/);
    expect(await dead.locator('.reason').innerText()).toMatch(/level|service|fields/);
    await page.locator('[data-testid="stream-row-coordIngest"]').first().waitFor();
    // Throughput sparklines from the groups' counters: messages make coord events the sentinel
    // group acks; its sparkline (uPlot) shows a rate above zero within a few samples.
    const store = new CoordStore(redis, { keyspace: ks });
    for (let i = 0; i < 5; i++) await store.send('alice', 'bob', `ping ${i}`);
    const acked = page.locator(
      '[data-testid="stream-row-coordEvents"][data-group="sentinel"] [data-testid="acked-rate"] .spark',
    );
    await waitFor(
      async () =>
        Number((await acked.getAttribute('data-max', { timeout: 1000 }).catch(() => null)) ?? 0) > 0,
      "a non-zero acked rate on the sentinel group's sparkline",
      30_000,
      250,
    );
    expect(await acked.locator('canvas').count()).toBeGreaterThan(0);
    const added = page
      .locator('[data-testid="stream-row-coordEvents"]')
      .first()
      .locator('[data-testid="in-rate"] .spark');
    expect(Number(await added.getAttribute('data-max'))).toBeGreaterThan(0);
    await shot('streams');

    // Replay: the entry goes back to its stream once, and leaves the dead-letter stream.
    const deadStream = ks.deadLetter(ks.coordIngest);
    const [[deadId]] = await redis.xrevrange(deadStream, '+', '-', 'COUNT', 1);
    const copies = async () =>
      (await redis.xrange(ks.coordIngest, '-', '+')).filter(([, f]) => f[5] === bad).length;
    expect(await copies()).toBe(1);
    await page.locator('[data-testid="redrive"]').first().click();
    await waitFor(
      async () => (await redis.xrange(deadStream, deadId, deadId)).length === 0,
      'the re-drive',
      20_000,
      100,
    );
    expect(await copies()).toBe(2);
    // The audit record is written once the re-drive has returned, a moment after the entry moved.
    await waitFor(
      async () =>
        String((await redis.xrevrange(ks.auditStream, '+', '-', 'COUNT', 1))[0]?.[1][5]).includes(
          '"action":"dead.redrive"',
        ),
      'the re-drive in the audit stream',
      10_000,
      100,
    );
  });

  it('shows the other views: session page, needs you, orders, telemetry, search', async () => {
    // A Notification hook event (a permission prompt) for bob; an order for alice.
    const activity = (session: string, event: string, extra: object) =>
      redis
        .multi()
        .xadd(
          ks.activityStream,
          '*',
          'type',
          'agent-activity',
          'v',
          '1',
          'data',
          JSON.stringify({ session_id: session, event, ts: new Date().toISOString(), ...extra }),
        )
        .hset(
          ks.activityLast,
          session,
          JSON.stringify({ session_id: session, event, ts: new Date().toISOString(), ...extra }),
        )
        .exec();
    await activity('alice', 'PostToolUse', { tool: 'Edit', path: 'src/auth.ts' });
    await activity('bob', 'Notification', { message: 'Claude needs your permission to use Bash' });
    expect((await coord('bob', ['dispatch', 'alice', '--ticket', 'TOD-42'])).code).toBe(0);
    // The body is never archived (nor shown); the subject is, and search finds it.
    await coord('alice', ['send', 'bob', 'review please', '--subject', 'auth refactor ready for review']);
    for (const [i, status] of (['stall', 'degraded', 'stall', 'stall'] as const).entries()) {
      await redis.xadd(
        ks.telemetryEvents,
        '*',
        ...codec.encode(Schemas.telemetry, {
          source: 'headroom',
          event: i % 2 ? 'proxy.overhead' : 'upstream.ttfb',
          status,
          duration_ms: 800 + 400 * i,
          detail: { line: `stage=${i % 2 ? 'proxy' : 'ttfb'} took ${800 + 400 * i}ms` },
          ts: new Date(Date.now() - (4 - i) * 60_000).toISOString(),
        }),
      );
    }

    await go('sessions');
    await page.locator('[data-testid="session-row-alice"]', { hasText: 'src/auth.ts' }).waitFor();
    await shot('sessions');

    await go('needs');
    await page.locator('[data-testid="needs-row"]', { hasText: 'bob' }).waitFor();
    await shot('needs-you');

    await go('session/alice');
    await page
      .locator('[data-testid="timeline"] tr', { hasText: 'coordEvents' })
      .first()
      .waitFor({ timeout: 15_000 });
    await shot('session');

    await go('orders');
    await page.locator('td', { hasText: 'TOD-42' }).waitFor();
    await shot('orders');

    await go('telemetry');
    await waitFor(
      async () => (await page.locator('.chart').count()) >= 2 || (await go('telemetry'), false),
      'two stage charts',
      20_000,
      500,
    );
    await shot('telemetry');

    // Search as one types: a ticket, words of a message subject, a resource; results link to the
    // session page. The archivist archives asynchronously, so a query is typed again until it finds.
    await go('search');
    const box = page.locator('[data-testid="search"]');
    const search = async (q: string, hasText: string) => {
      const row = page.locator('[data-testid="search-row"]', { hasText }).first();
      await waitFor(
        async () => {
          await box.fill('');
          await box.fill(q);
          return row
            .waitFor({ timeout: 2000 })
            .then(() => true)
            .catch(() => false);
        },
        `a search for ${q} to find ${hasText}`,
        30_000,
        100,
      );
      return row;
    };
    // The coord event (`ticket=`); the sentinel's observation of it matches too (its summary names the ticket).
    const ticket = await search('TOD-42', 'ticket=TOD-42');
    expect(await ticket.innerText()).toContain('dispatch.issue');
    await page.locator('[data-testid="search-row"]', { hasText: '(ticket TOD-42)' }).first().waitFor();
    await shot('search');
    // An order's event belongs to its assignee.
    await ticket.getByRole('link', { name: 'alice' }).click();
    await page.waitForURL(/#\/session\/alice$/);
    await page.locator('[data-testid="timeline"] tr', { hasText: 'dispatch.issue' }).first().waitFor();

    await go('search');
    const subject = await search('refactor READY', 'auth refactor ready for review');
    expect(await subject.innerText()).toContain('inbox.deliver');
    // A message's event belongs to its recipient.
    await subject.getByRole('link', { name: 'bob' }).click();
    await page.waitForURL(/#\/session\/bob$/);
    await page.locator('[data-testid="timeline"] tr', { hasText: 'inbox.deliver' }).first().waitFor();

    await go('search');
    await search('src/auth.ts', 'lock.acquire');
    await box.fill('no-such-words-anywhere');
    await page.locator('[data-testid="search-empty"]').waitFor();
  });
});
