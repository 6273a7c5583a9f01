import Redis from 'ioredis';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConflictError,
  CoordEvent,
  EnvelopeCodec,
  Keyspace,
  NotFoundError,
  Schemas,
} from '@coordbus/envelope';
import { COORD_SESSION_TTL } from '@coordbus/config';
import { CoordStore, FileMirror, RespClient } from '@coordbus/coord';
import { cleanupNamespace, testKeyspace, testRedisUrl } from '@coordbus/testing';

const codec = new EnvelopeCodec();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Issue 14 §1, §3, §4 on the store: one stored TTL, order states, locks as users mean them. */
describe('CoordStore: one truth about the fleet (real Redis)', () => {
  let redis: Redis;
  let ks: Keyspace;
  let store: CoordStore;
  let resp: RespClient;

  async function events(): Promise<CoordEvent[]> {
    return (await redis.xrange(ks.coordEvents, '-', '+')).map(([, f]) => codec.decode(Schemas.coordEvent, f));
  }

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
  });
  afterAll(() => redis.disconnect());
  beforeEach(() => {
    ks = testKeyspace('fleet');
    resp = new RespClient(testRedisUrl());
    store = new CoordStore(resp, { keyspace: ks });
  });
  afterEach(async () => {
    resp.disconnect();
    await cleanupNamespace(redis, ks);
  });

  describe('§1 the session TTL is one stored setting', () => {
    it('defaults to COORD_SESSION_TTL’s default, the value the Lua scripts fall back to', async () => {
      expect(await store.sessionTtl()).toBe(COORD_SESSION_TTL.default);
      expect(await store.sessionTtlIsSet()).toBe(false);
      const prelude = readFileSync(join(__dirname, '../src/commands/includes/prelude.lua'), 'utf8');
      expect(prelude).toContain(`local DEFAULT_SESSION_TTL_MS = ${COORD_SESSION_TTL.default}`);
    });

    it('a caller’s own TTL only changes what it shows: steal follows the stored TTL', async () => {
      await store.register({ sessionId: 'owner', host: 'h', pid: 1 });
      await store.lock('owner', 'db');
      await sleep(30);
      // A caller that thinks 1 ms is the TTL sees the owner stale, yet may not steal.
      const impatient = new CoordStore(resp, { keyspace: ks, displayTtlMs: 1 });
      expect((await impatient.peers()).map((p) => p.live)).toEqual([false]);
      expect((await impatient.status('owner')).display_ttl_s).toBe(0.001);
      await expect(impatient.steal('thief', 'db')).rejects.toThrow(/held by owner \(owner is live/);

      // The deployment's TTL changes once, for everyone.
      await store.setSessionTtl(10);
      expect(await store.sessionTtl()).toBe(10);
      expect((await store.status('owner')).session_ttl_s).toBe(0.01);
      expect((await store.steal('thief', 'db')).stolenFrom).toBe('owner');
    });

    it('seeding stores the deployment value only when none is stored, never over a config set', async () => {
      expect(await store.seedSessionTtl(120_000)).toBe(true);
      expect(await store.seedSessionTtl(5_000)).toBe(false);
      expect(await store.sessionTtl()).toBe(120_000);
      await store.setSessionTtl(60_000);
      expect(await store.seedSessionTtl(5_000)).toBe(false);
      expect(await store.sessionTtl()).toBe(60_000);
      await expect(store.setSessionTtl(0)).rejects.toThrow(/between 1ms and 30d/);
    });
  });

  describe('§4 locks mean what users mean', () => {
    it('a glob reservation and the paths it covers conflict both ways; its owner may take them', async () => {
      await store.lock('alice', 'src/**');
      await expect(store.lock('bob', 'src/auth.ts')).rejects.toThrow(
        'lock src/auth.ts is held by alice (via src/**)',
      );
      await expect(store.lock('bob', 'src/deep/x.ts')).rejects.toBeInstanceOf(ConflictError);
      await expect(store.lock('bob', 'src/*.ts')).rejects.toBeInstanceOf(ConflictError);
      expect((await store.lock('bob', 'srcs/auth.ts')).status).toBe('acquired');
      expect((await store.lock('bob', 'docs/*.md')).status).toBe('acquired');
      expect((await store.lock('alice', 'src/auth.ts')).status).toBe('acquired');

      await store.lock('carol', 'lib/a.ts');
      const err = await store.lock('dave', 'lib/*').catch((e: ConflictError) => e);
      expect(err).toBeInstanceOf(ConflictError);
      expect((err as ConflictError).details).toMatchObject({ owner: 'carol', blocking: 'lib/a.ts' });
      // `*` stays within a segment: lib/* does not cover lib/x/y.ts.
      expect((await store.lock('dave', 'lib/x/*')).status).toBe('acquired');

      // Released globs stop covering anything.
      await store.unlock('alice', 'src/auth.ts');
      await store.unlock('alice', 'src/**');
      expect((await store.lock('bob', 'src/auth.ts')).status).toBe('acquired');
      expect(await redis.smembers(ks.coordKey('glob-locks'))).toEqual(
        expect.arrayContaining(['docs/*.md', 'lib/x/*']),
      );
    });

    it('steal takes a glob from a quiet owner, releasing every lock it covered', async () => {
      await store.setSessionTtl(20);
      await store.lock('old', 'src/a.ts');
      await store.lock('old', 'src/b.ts');
      await sleep(40);
      const r = await store.steal('new', 'src/**');
      expect(r).toMatchObject({ status: 'acquired', stolenFrom: 'old' });
      expect((await store.locks()).map((l) => l.resource)).toEqual(['src/**']);
    });

    it('an unregistered session is registered by its first lock, and culled with its locks released exactly once', async () => {
      const r = await store.lock('ghost', 'x', { host: 'box', pid: 42 });
      expect(r.autoRegistered).toBe(true);
      expect(await store.getSession('ghost')).toMatchObject({
        host: 'box',
        pid: 42,
        blob: { auto_registered: true },
      });
      expect((await store.lock('ghost', 'y')).autoRegistered).toBeUndefined();

      await store.setSessionTtl(10);
      await sleep(30);
      const replicas = [
        store,
        new CoordStore(redis, { keyspace: ks }),
        new CoordStore(redis, { keyspace: ks }),
      ];
      const results = await Promise.all(replicas.map((s) => s.evictIfExpired('ghost')));
      expect(results.filter((x) => x.evicted)).toHaveLength(1);
      const evs = (await events()).filter((e) => e.session_id === 'ghost');
      expect(evs.map((e) => [e.tx_kind, e.resource, (e.payload as { reason?: string }).reason])).toEqual([
        ['session.register', null, undefined],
        ['lock.acquire', 'x', undefined],
        ['lock.acquire', 'y', undefined],
        ['session.dereg', null, 'ttl-expired'],
        ['lock.release', 'x', 'owner-evicted'],
        ['lock.release', 'y', 'owner-evicted'],
      ]);
      expect(await store.locks()).toEqual([]);
    });

    it('a deregistered session’s lock taken over since is not released again', async () => {
      await store.setSessionTtl(10);
      await store.register({ sessionId: 'a', host: 'h', pid: 1 });
      await store.lock('a', 'r');
      await sleep(30);
      await store.steal('b', 'r');
      const d = await store.dereg('a');
      expect(d.releasedLocks).toEqual([]);
      expect((await store.locks()).map((l) => l.owner_session_id)).toEqual(['b']);
      expect((await events()).filter((e) => e.tx_kind === 'lock.release')).toHaveLength(1);
    });
  });

  describe('§3 dispatch orders can be read and acted on', () => {
    it('orders lists the assignee’s open orders oldest first; ack, done and reject move them on as events', async () => {
      const root = mkdtempSync(join(tmpdir(), 'coord-orders-'));
      try {
        const s = new CoordStore(resp, { keyspace: ks, mirror: new FileMirror(root) });
        await s.register({ sessionId: 'bob', host: 'h', pid: 1 });
        await s.dispatch('alice', 'bob', 'TOD-1', 'o-1');
        await s.dispatch('alice', 'bob', 'TOD-2', 'o-2');
        await s.dispatch('alice', 'carol', 'TOD-3', 'o-3');
        expect((await s.orders('bob')).map((o) => [o.order_id, o.state])).toEqual([
          ['o-1', 'pending'],
          ['o-2', 'pending'],
        ]);
        expect((await s.peers()).map((p) => [p.session_id, p.open_orders])).toEqual([['bob', 2]]);

        await expect(s.order('carol', 'o-1', 'ack')).rejects.toThrow(
          'order o-1 is assigned to bob, not carol',
        );
        await expect(s.order('bob', 'nope', 'ack')).rejects.toBeInstanceOf(NotFoundError);
        expect(await s.order('bob', 'o-1', 'ack')).toMatchObject({ moved: true, order: { state: 'ack' } });
        expect((await s.order('bob', 'o-1', 'ack')).moved).toBe(false);
        expect(await s.order('bob', 'o-1', 'done', 'merged')).toMatchObject({
          order: { state: 'done', note: 'merged' },
        });
        await expect(s.order('bob', 'o-1', 'reject')).rejects.toThrow('order o-1 is done: cannot reject it');
        await s.order('bob', 'o-2', 'reject', 'not mine');

        expect(await s.orders('bob')).toEqual([]);
        expect((await s.orders('bob', { all: true })).map((o) => [o.order_id, o.state, o.note])).toEqual([
          ['o-1', 'done', 'merged'],
          ['o-2', 'reject', 'not mine'],
        ]);
        expect((await s.status('bob')).orders).toEqual([]);
        expect(await redis.hget(ks.coordKey('dispatch:o-1'), 'state')).toBe('done');

        const life = (await events()).filter(
          (e) => e.tx_kind.startsWith('dispatch.') && e.session_id === 'bob',
        );
        expect(life.map((e) => [e.tx_kind, e.payload])).toEqual([
          ['dispatch.issue', { order_id: 'o-1', assignee: 'bob', ticket: 'TOD-1' }],
          ['dispatch.issue', { order_id: 'o-2', assignee: 'bob', ticket: 'TOD-2' }],
          ['dispatch.ack', { order_id: 'o-1', assignee: 'bob' }],
          ['dispatch.done', { order_id: 'o-1', assignee: 'bob', note: 'merged' }],
          ['dispatch.reject', { order_id: 'o-2', assignee: 'bob', note: 'not mine' }],
        ]);
        // The seed's file layout, with the state beside it.
        expect(JSON.parse(readFileSync(join(root, 'dispatch-orders', 'o-1.json'), 'utf8'))).toMatchObject({
          order_id: 'o-1',
          assignee: 'bob',
          ticket: 'TOD-1',
          state: 'done',
        });
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  });
});
