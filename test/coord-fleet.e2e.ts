import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { CoordStore } from '@coordbus/coord';
import { CoordOpEnvelope, EnvelopeCodec, Keyspace, Schemas } from '@coordbus/envelope';
import {
  cleanupNamespace,
  ServiceProcess,
  startService,
  testKeyspace,
  testRedisUrl,
  waitFor,
} from '@coordbus/testing';
import { COORD, COORDBUS, json, run } from './coord-helpers';

const codec = new EnvelopeCodec();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
jest.setTimeout(120_000);

/**
 * Issue 14 §1–§4 as a user meets them: the real bin/coord and bin/coordbus processes (and the
 * built sentinel and fanout services for the live views) against a real Redis.
 */
describe('one truth about the fleet (bin/coord, bin/coordbus, services)', () => {
  let redis: Redis;
  let ks: Keyspace;
  let repo: string;
  const procs: ServiceProcess[] = [];
  const env = (session: string, extra: NodeJS.ProcessEnv = {}) => ({
    REDIS_URL: testRedisUrl(),
    COORDBUS_NAMESPACE: ks.namespace,
    COORD_SESSION_ID: session,
    CLAUDE_SESSION_ID: '',
    COORD_SESSION_TTL: '',
    ...extra,
  });
  const coord = (session: string, args: string[], extra: NodeJS.ProcessEnv = {}, cwd = repo) =>
    run(COORD, args, { env: env(session, extra), cwd });
  const coordbus = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    run(COORDBUS, args, { env: env('operator', extra), cwd: repo });

  beforeAll(async () => {
    redis = new Redis(testRedisUrl());
    await run(COORD, ['help']);
  });
  afterAll(() => redis.disconnect());
  beforeEach(() => {
    ks = testKeyspace('fleet-e2e');
    // A git worktree of its own: lock names are relative to its root.
    repo = mkdtempSync(join(tmpdir(), 'fleet-repo-'));
    mkdirSync(join(repo, '.git'));
    mkdirSync(join(repo, 'src', 'deep'), { recursive: true });
    writeFileSync(join(repo, 'src', 'auth.ts'), '');
  });
  afterEach(async () => {
    await Promise.all(procs.splice(0).map((p) => p.stop('SIGKILL').catch(() => undefined)));
    await cleanupNamespace(redis, ks);
    rmSync(repo, { recursive: true, force: true });
  });

  it('§1 COORD_SESSION_TTL=1 cannot steal from a session that heartbeated 2 s ago; the stored TTL decides', async () => {
    expect((await coord('alice', ['register'])).code).toBe(0);
    expect((await coord('alice', ['lock', 'src/shared.ts'])).code).toBe(0);
    await sleep(2000);
    const refused = await coord('bob', ['steal', 'src/shared.ts'], { COORD_SESSION_TTL: '1' });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('held by alice (owner is live; --force to take it anyway)');
    // That caller SEES alice stale (display only) ...
    const peers = await coord('bob', ['peers'], { COORD_SESSION_TTL: '1' });
    expect(peers.stdout).toMatch(/^stale alice /m);
    expect((await coord('bob', ['status'], { COORD_SESSION_TTL: '1s' })).stdout).toContain(
      'session ttl 300 s; shown with your COORD_SESSION_TTL 1 s',
    );

    // ... while the deployment's TTL changes once, for everyone, with units.
    expect(json(await coordbus(['config', 'get', '--json']))).toEqual({
      session_ttl_ms: 300_000,
      session_ttl: '5m',
      stored: false,
    });
    expect((await coordbus(['config', 'set', 'session-ttl', '1s'])).stdout).toBe('session-ttl 1s\n');
    const bad = await coordbus(['config', 'set', 'session-ttl', 'soon']);
    expect(bad.code).toBe(7);
    expect(bad.stderr).toContain('session-ttl must be a duration');
    expect((await coordbus(['config', 'set', 'ttl', '5m'])).code).toBe(2);
    expect(await redis.hget(ks.coordKey('config'), 'session_ttl_ms')).toBe('1000');
    const stolen = await coord('bob', ['steal', 'src/shared.ts', '--json']);
    expect(stolen.code).toBe(0);
    expect(json(stolen)).toMatchObject({ stolenFrom: 'alice' });
    expect((await coord('bob', ['config', 'get'])).stdout).toBe('session-ttl 1s\n');
    // Durations take units on every flag too (one parser).
    const timed = json<{ lock: { acquired_at: string; expires_at: string } }>(
      await coord('bob', ['lock', 'tmp', '--ttl', '10m', '--json']),
    );
    expect(Date.parse(timed.lock.expires_at) - Date.parse(timed.lock.acquired_at)).toBe(600_000);
  });

  it('§4 one lock per path however it is written, globs both ways, unregistered sessions registered', async () => {
    expect((await coord('alice', ['register'])).code).toBe(0);
    const a = await coord('alice', ['lock', './src/auth.ts', '--json']);
    expect(json(a)).toMatchObject({ lock: { resource: 'src/auth.ts' } });
    const fromSrc = await coord('bob', ['lock', 'auth.ts'], {}, join(repo, 'src'));
    expect(fromSrc.code).toBe(3);
    expect(fromSrc.stderr).toContain('lock src/auth.ts is held by alice');
    expect((await coord('bob', ['lock', '../../src/auth.ts'], {}, join(repo, 'src', 'deep'))).code).toBe(3);
    const glob = await coord('carol', ['lock', 'src/**']);
    expect(glob.code).toBe(3);
    expect(glob.stderr).toContain('lock src/** is held by alice (via src/auth.ts)');
    const outside = await coord('bob', ['lock', '../../../etc/passwd'], {}, join(repo, 'src'));
    expect(outside.code).toBe(7);
    expect(outside.stderr).toContain('outside the git worktree');

    // dave never registered: his lock registers him, so the cull sees him (and his lock).
    const dave = await coord('dave', ['lock', 'docs/**']);
    expect(dave.code).toBe(0);
    expect(dave.stdout).toContain('locked docs/** (session dave registered by this lock)');
    expect(
      (JSON.parse((await coord('alice', ['peers', '--json'])).stdout) as { session_id: string }[]).map(
        (p) => p.session_id,
      ),
    ).toEqual(['alice', 'dave']);
    expect((await coord('erin', ['lock', 'docs/guide.md'])).code).toBe(3);
    // The op envelope names the lock as normalised.
    const envs = (await redis.xrange(ks.coordIngest, '-', '+')).map(([, f]) =>
      codec.decode(Schemas.coordOp, f),
    );
    expect(
      envs.some(
        (e) => e.fields.op === 'lock' && e.fields.resource === 'src/auth.ts' && e.fields.session === 'bob',
      ),
    ).toBe(true);
  });

  it('§3 orders: the assignee reads, acks and finishes them; status, peers and COORD_ROOT show them', async () => {
    const root = join(repo, 'coord-root');
    const extra = { COORD_ROOT: root };
    expect((await coord('bob', ['register'], extra)).code).toBe(0);
    expect(
      (await coord('alice', ['dispatch', 'bob', '--ticket', 'TOD-42', '--order-id', 'o-42'], extra)).code,
    ).toBe(0);
    expect(
      (await coord('alice', ['dispatch', 'bob', '--ticket', 'TOD-43', '--order-id', 'o-43'], extra)).code,
    ).toBe(0);

    const orders = JSON.parse((await coord('bob', ['orders', '--json'])).stdout) as {
      order_id: string;
      state: string;
    }[];
    expect(orders.map((o) => [o.order_id, o.state])).toEqual([
      ['o-42', 'pending'],
      ['o-43', 'pending'],
    ]);
    expect((await coord('bob', ['status'])).stdout).toContain(
      'orders: 2 pending, 0 acked (o-42 TOD-42, o-43 TOD-43)',
    );
    expect((await coord('alice', ['peers'])).stdout).toMatch(/^live {2}bob .*orders 2 open$/m);

    expect((await coord('bob', ['order', 'ack', 'o-42'], extra)).stdout).toBe('ack o-42 (TOD-42)\n');
    expect((await coord('bob', ['order', 'done', 'o-42', '--note', 'shipped in 4f2c'], extra)).code).toBe(0);
    expect((await coord('bob', ['order', 'reject', 'o-43', '--note', 'not mine'], extra)).code).toBe(0);
    const notMine = await coord('carol', ['order', 'ack', 'o-43']);
    expect(notMine.code).toBe(3);
    expect(notMine.stderr).toContain('assigned to bob, not carol');
    expect((await coord('bob', ['order', 'done', 'o-43'])).code).toBe(3);
    const badAction = await coord('bob', ['order', 'finish', 'o-43']);
    expect(badAction.code).toBe(2);
    expect(badAction.stderr).toContain('one of ack, done, reject');
    expect((await coord('bob', ['order', 'ack', 'o-99'])).code).toBe(4);

    expect((await coord('bob', ['orders'])).stdout).toBe('no orders\n');
    const all = JSON.parse((await coord('bob', ['orders', '--all', '--json'])).stdout) as Record<
      string,
      unknown
    >[];
    expect(all.map((o) => [o.order_id, o.state, o.note])).toEqual([
      ['o-42', 'done', 'shipped in 4f2c'],
      ['o-43', 'reject', 'not mine'],
    ]);
    expect(JSON.parse(readFileSync(join(root, 'dispatch-orders', 'o-42.json'), 'utf8'))).toMatchObject({
      order_id: 'o-42',
      assignee: 'bob',
      ticket: 'TOD-42',
      state: 'done',
      note: 'shipped in 4f2c',
    });

    // --follow: the current orders, then each new one as it is issued.
    const follower = spawn(COORD, ['orders', '--follow', '--timeout', '8'], {
      env: { ...process.env, ...env('bob') },
    });
    let out = '';
    follower.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => follower.once('close', (c) => r(c)));
    await sleep(1000);
    await coord('alice', ['dispatch', 'bob', '--ticket', 'TOD-44', '--order-id', 'o-44']);
    await coord('alice', ['dispatch', 'carol', '--ticket', 'TOD-45', '--order-id', 'o-45']);
    await waitFor(() => out.includes('o-44'), 'the followed order', 6000, 50);
    follower.kill('SIGTERM');
    await exited;
    expect(out).toMatch(/^o-44 {2}pending {2}TOD-44 {2}from alice/m);
    expect(out).not.toContain('o-45');
  });

  it('§2 a cull and a forced release appear once in logs.coord.*, logs:stream:coord, tail and events (two sentinels)', async () => {
    const svcEnv = { REDIS_URL: testRedisUrl(), COORDBUS_NAMESPACE: ks.namespace, SENTINEL_BLOCK_MS: '200' };
    const sentinelEnv = { ...svcEnv, COORD_SESSION_TTL: '2', SENTINEL_CULL_INTERVAL_MS: '200' };
    procs.push(
      ...(await Promise.all([
        startService('sentinel-subscriber', { ...sentinelEnv, COORDBUS_CONSUMER: 's-a' }, 60_000),
        startService('sentinel-subscriber', { ...sentinelEnv, COORDBUS_CONSUMER: 's-b' }, 60_000),
        startService('fanout-publisher', svcEnv, 60_000),
      ])),
    );
    // The sentinels seeded the stored TTL from COORD_SESSION_TTL.
    await waitFor(
      async () => (await redis.hget(ks.coordKey('config'), 'session_ttl_ms')) === '2000',
      'seeded TTL',
    );

    const sub = new Redis(testRedisUrl());
    const published: CoordOpEnvelope[] = [];
    sub.on('pmessage', (_p, _c, m: string) => published.push(JSON.parse(m) as CoordOpEnvelope));
    await sub.psubscribe(ks.coordLevelPattern);
    const tail = spawn(COORDBUS, ['tail'], { env: { ...process.env, ...env('op') } });
    const follow = spawn(COORDBUS, ['events', '--follow', '--session', 'idle', '--kind', 'session'], {
      env: { ...process.env, ...env('op') },
    });
    let followed = '';
    follow.stdout.on('data', (d: Buffer) => (followed += d.toString()));
    let tailed = '';
    tail.stdout.on('data', (d: Buffer) => (tailed += d.toString()));
    try {
      // tail is subscribed once a probe op shows up in it.
      await waitFor(
        async () => (await coord('probe', ['status'])).code === 0 && tailed.includes('session=probe'),
        'tail subscribed',
        20_000,
        200,
      );
      expect((await coord('idle', ['register'])).code).toBe(0);
      expect((await coord('idle', ['lock', 'src/auth.ts'])).code).toBe(0);
      expect((await coord('keeper', ['register'])).code).toBe(0);
      expect((await coord('keeper', ['lock', 'db'])).code).toBe(0);
      // An operator frees keeper's lock (what the fleet console's force-release does).
      await new CoordStore(redis, { keyspace: ks }).forceRelease('db', 'keeper');
      await waitFor(
        async () => (await redis.exists(ks.coordKey('session:idle'))) === 0,
        'idle culled',
        30_000,
      );

      const warn = (e: CoordOpEnvelope) => e.level === 'warn' && e.fields.session === 'idle';
      await waitFor(
        () => published.filter(warn).length >= 2 && tailed.includes('coord.cull lock src/auth.ts of idle'),
        'cull published',
        20_000,
      );
      await sleep(1000); // time for any duplicate to show up
      const replay = (await redis.xrange(ks.coordReplay, '-', '+')).map(([, f]) =>
        codec.decode(Schemas.coordOp, f),
      );
      const culls = replay.filter(warn);
      expect(culls.map((e) => [e.target, e.msg, e.fields.resource])).toEqual([
        ['coord::cull', 'coord.cull session idle culled: no heartbeat within the session TTL', ''],
        ['coord::cull', 'coord.cull lock src/auth.ts of idle released: owner culled', 'src/auth.ts'],
      ]);
      expect(culls.every((e) => e.service === 'coord' && e.fields.op === 'cull')).toBe(true);
      expect(published.filter(warn)).toHaveLength(2);
      const forced = replay.filter((e) => e.fields.op === 'force-release');
      expect(forced.map((e) => [e.level, e.target, e.msg, e.fields.session, e.fields.resource])).toEqual([
        [
          'warn',
          'coord::force-release',
          'coord.force-release lock db of keeper released by an operator',
          'keeper',
          'db',
        ],
      ]);
      expect(tailed).toMatch(/WARN {2}coord\.cull session idle culled/);

      await waitFor(() => followed.includes('session.dereg'), 'events --follow to show the cull', 10_000);
      expect(
        followed
          .trim()
          .split('\n')
          .map((l) => l.split(/\s+/)[1]),
      ).toEqual(['session.register', 'session.dereg']);
      const events = await coordbus(['events', '--session', 'idle']);
      expect(events.code).toBe(0);
      expect(events.stdout).toMatch(/session\.dereg +session=idle reason=ttl-expired source=sentinel/);
      expect(events.stdout).toMatch(
        /lock\.release +session=idle resource=src\/auth\.ts reason=owner-evicted/,
      );
      const obs = await coordbus([
        'events',
        '--observations',
        '--session',
        'idle',
        '--kind',
        'lock',
        '--json',
      ]);
      expect(
        obs.stdout
          .trim()
          .split('\n')
          .map((l) => (JSON.parse(l) as { kind: string }).kind),
      ).toEqual(['lock.acquire', 'lock.release']);
      const badKind = await coordbus(['events', '--kind', 'locks']);
      expect(badKind.code).toBe(2);
      expect(badKind.stderr).toContain('--kind must be one of session, lock, inbox, dispatch');
    } finally {
      tail.kill('SIGTERM');
      follow.kill('SIGTERM');
      sub.disconnect();
    }
  });
});
