import Redis from 'ioredis';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keyspace } from '@coordbus/envelope';
import { CoordStore, RespClient } from '@coordbus/coord';
import { cleanupNamespace, testKeyspace, testRedisUrl, TestRedisServer } from '@coordbus/testing';
import { COORD, COORDBUS, run } from './coord-helpers';

/**
 * Issue 13 §2 and §7 against the real `coord` and `coordbus` processes: a read that fails deletes
 * nothing, every inbox is readable, every command is bounded, and argv means what it says.
 */
jest.setTimeout(240_000);

describe('never lose, always bounded (bin/coord, bin/coordbus)', () => {
  let redis: Redis;
  let ks: Keyspace;
  let resp: RespClient;
  let store: CoordStore;
  const env = (session: string, extra: NodeJS.ProcessEnv = {}) => ({
    REDIS_URL: testRedisUrl(),
    COORDBUS_NAMESPACE: ks.namespace,
    COORD_SESSION_ID: session,
    CLAUDE_SESSION_ID: '',
    LOGS_COORD_DISABLED: '1',
    ...extra,
  });
  const coord = (session: string, args: string[], extra: NodeJS.ProcessEnv = {}) =>
    run(COORD, args, { env: env(session, extra), timeoutMs: 60_000 });

  /** Fills bob's inbox through the real send script, `n` bodies of `bytes` each, numbered. */
  async function fill(n: number, bytes: number): Promise<Set<string>> {
    const bodies = new Set<string>();
    for (let i = 0; i < n; i += 100) {
      const chunk = Array.from({ length: Math.min(100, n - i) }, (_, j) =>
        `${String(i + j).padStart(6, '0')}`.padEnd(bytes, 'x'),
      );
      chunk.forEach((b) => bodies.add(b));
      await Promise.all(chunk.map((b) => store.send('alice', 'bob', b, { allowUnknownPeer: true })));
    }
    return bodies;
  }

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
  });
  afterAll(() => redis.disconnect());
  beforeEach(() => {
    ks = testKeyspace('neverlose');
    resp = new RespClient(testRedisUrl(), { commandTimeoutMs: 30_000 });
    store = new CoordStore(resp, { keyspace: ks });
  });
  afterEach(async () => {
    resp.disconnect();
    await cleanupNamespace(redis, ks);
  });

  it('drains 1 500 x 10 KiB fully, nothing lost, even when the reader times out mid-read', async () => {
    const sent = await fill(1500, 10_240);
    const inbox = store.inboxKey('bob');

    // A reader that gives up before the (15 MB) page arrives takes nothing and prints nothing.
    const gaveUp = await coord('bob', ['recv', '--drain', '--limit', '1500'], {
      COORD_REDIS_TIMEOUT: '0.05',
    });
    expect(gaveUp.code).toBe(5);
    expect(gaveUp.stdout).toBe('');
    expect(await redis.llen(inbox)).toBe(1500);

    // Then page by page until [] — every message exactly as sent, none missing.
    const got: string[] = [];
    for (let round = 0; round < 20; round++) {
      const r = await coord('bob', ['recv', '--drain', '--limit', '500']);
      expect(r.code).toBe(0);
      const page = JSON.parse(r.stdout) as { body: string }[];
      if (!page.length) break;
      expect(page.length).toBeLessThanOrEqual(500);
      got.push(...page.map((m) => m.body));
    }
    expect(got).toHaveLength(1500);
    expect(new Set(got)).toEqual(sent);
    expect(got).toEqual([...sent]); // oldest first
    expect(await redis.exists(inbox)).toBe(0);
  });

  it('peeks a 10 000-message inbox in bounded pages (default 100, --limit N), and a full inbox refuses the sender', async () => {
    await fill(10_000, 20);
    const peek = await coord('bob', ['recv']);
    expect(peek.code).toBe(0);
    expect(JSON.parse(peek.stdout)).toHaveLength(100);
    const more = await coord('bob', ['recv', '--limit', '2500']);
    expect(JSON.parse(more.stdout)).toHaveLength(2500);
    expect((await coord('bob', ['recv', '--limit', '0'])).code).toBe(2);
    expect((await coord('bob', ['recv', '--limit', '10001'])).code).toBe(2);

    // COORD_INBOX_MAX defaults to 10 000: the sender is told, the reader's inbox stays as it was.
    const full = await coord('alice', ['send', 'bob', 'one more'], { COORD_SESSION_ID: 'alice' });
    await coord('bob', ['register']);
    const refused = await coord('alice', ['send', 'bob', 'one more']);
    expect(full.code).not.toBe(0);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/inbox of bob is full \(10000 messages, limit 10000: COORD_INBOX_MAX\)/);
    expect(await redis.llen(store.inboxKey('bob'))).toBe(10_000);
  });

  it('refuses an over-size body with exit 7 naming COORD_MAX_MESSAGE_BYTES; nothing delivered', async () => {
    await coord('bob', ['register']);
    const big = await coord('alice', ['send', 'bob', 'x'.repeat(2000)], { COORD_MAX_MESSAGE_BYTES: '1000' });
    expect(big.code).toBe(7);
    expect(big.stderr).toContain('2000 bytes, over the 1000-byte limit (COORD_MAX_MESSAGE_BYTES)');
    expect(await redis.llen(store.inboxKey('bob'))).toBe(0);
    const bad = await coord('alice', ['send', 'bob', 'x'], { COORD_MAX_MESSAGE_BYTES: 'lots' });
    expect(bad.code).toBe(7);
    expect(bad.stderr).toContain('COORD_MAX_MESSAGE_BYTES');
  });

  it('`--` ends option parsing for every op: a body that is literally --json or --help is sent as is', async () => {
    await coord('bob', ['register']);
    for (const body of ['--json', '--help', '-h', '--kind=x']) {
      const r = await coord('alice', ['send', 'bob', '--', body]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^sent /);
    }
    const withJson = await coord('alice', ['send', '--json', 'bob', '--', '--json']);
    expect(JSON.parse(withJson.stdout)).toMatchObject({ message: { body: '--json' } });
    const page = JSON.parse((await coord('bob', ['recv', '--drain'])).stdout) as { body: string }[];
    expect(page.map((m) => m.body)).toEqual(['--json', '--help', '-h', '--kind=x', '--json']);
  });

  it('bounds --blob nesting (exit 7, not a stack overflow) and treats Object.prototype names as unknown ops', async () => {
    for (const depth of [65, 60_000]) {
      const r = await coord('alice', ['register', '--blob', `${'['.repeat(depth)}${']'.repeat(depth)}`]);
      expect(r.code).toBe(7);
      expect(r.stderr).toContain('--blob nests deeper than 64 levels');
    }
    // Brackets inside strings are data, not nesting.
    const ok = await coord('alice', ['register', '--blob', JSON.stringify({ s: '['.repeat(500) }), '--json']);
    expect(ok.code).toBe(0);
    expect(await redis.hexists(store.sessionKey('alice'), 'blob')).toBe(1);
    for (const op of ['constructor', 'hasOwnProperty', '__proto__', 'toString']) {
      const r = await coord('alice', [op]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`unknown op "${op}"`);
    }
  });

  it('`coordbus hooks run constructor` (and other Object.prototype names) is an undefined hook: exit 0, nothing run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'coordbus-hooks-'));
    try {
      mkdirSync(join(dir, '.coordbus'));
      writeFileSync(join(dir, '.coordbus', 'hooks.yml'), 'SessionStart:\n  jobs: []\n');
      for (const hook of ['constructor', 'hasOwnProperty', '__proto__', 'valueOf']) {
        const r = await run(COORDBUS, ['hooks', 'run', hook], {
          cwd: dir,
          env: { REDIS_URL: testRedisUrl(), COORDBUS_NAMESPACE: ks.namespace },
          timeoutMs: 60_000,
        });
        expect({ hook, code: r.code, stderr: r.stderr }).toEqual({ hook, code: 0, stderr: '' });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every CLI command fails fast with exit 5 within COORDBUS_REDIS_TIMEOUT when Redis is stopped (SIGSTOP)', async () => {
    const server = await new TestRedisServer().start();
    try {
      process.kill(server.pid!, 'SIGSTOP');
      const cases: [string, string[]][] = [
        [COORDBUS, ['jobs', 'ls']],
        [COORDBUS, ['jobs', 'prune', '--dry-run']],
        [COORDBUS, ['replay']],
        [COORD, ['peers']],
      ];
      for (const [bin, args] of cases) {
        const r = await run(bin, args, {
          env: {
            REDIS_URL: server.url,
            COORDBUS_NAMESPACE: ks.namespace,
            COORD_SESSION_ID: 'alice',
            COORDBUS_REDIS_TIMEOUT: '1s',
            COORD_REDIS_TIMEOUT: '1',
            LOGS_COORD_DISABLED: '1',
          },
          timeoutMs: 30_000,
        });
        expect({ args, code: r.code }).toEqual({ args, code: 5 });
        // 1 s bound + process start-up (slow on a loaded CI machine); it used to hang forever.
        expect(r.ms).toBeLessThan(15_000);
        expect(r.stderr).toMatch(/COORDBUS_REDIS_TIMEOUT|COORD_REDIS_TIMEOUT/);
      }
    } finally {
      process.kill(server.pid!, 'SIGCONT');
      await server.dispose();
    }
  });
});
