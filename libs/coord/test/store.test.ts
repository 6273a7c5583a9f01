import Redis from 'ioredis';
import { mkdtempSync, readFileSync, existsSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConflictError,
  CoordEvent,
  EnvelopeCodec,
  Keyspace,
  NotFoundError,
  Schemas,
  UnavailableError,
} from '@coordbus/envelope';
import { CoordStore, FileMirror, readCoordRoot, RespClient } from '@coordbus/coord';
import { cleanupNamespace, freePort, testKeyspace, testRedisUrl } from '@coordbus/testing';

const codec = new EnvelopeCodec();

describe('CoordStore (real Redis)', () => {
  let redis: Redis;
  let ks: Keyspace;
  let store: CoordStore;
  let resp: RespClient;

  /** Every event on the coord events stream, decoded and validated by the codec. */
  async function events(): Promise<CoordEvent[]> {
    const entries = await redis.xrange(ks.coordEvents, '-', '+');
    return entries.map(([, fields]) => codec.decode(Schemas.coordEvent, fields));
  }

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
  });
  afterAll(async () => {
    redis.disconnect();
  });
  beforeEach(() => {
    ks = testKeyspace('coord');
    resp = new RespClient(testRedisUrl());
    store = new CoordStore(resp, { keyspace: ks });
  });
  afterEach(async () => {
    resp.disconnect();
    await cleanupNamespace(redis, ks);
  });

  it('register writes the session and session.register once; re-register is idempotent and resets last_heartbeat', async () => {
    const first = await store.register({
      sessionId: 's1',
      host: 'h',
      pid: 10,
      role: 'worker',
      task: 'T-1',
      blob: { a: [1, 2] },
    });
    expect(first.status).toBe('registered');
    expect(first.session).toMatchObject({
      session_id: 's1',
      pid: 10,
      host: 'h',
      role: 'worker',
      task: 'T-1',
      blob: { a: [1, 2] },
      phase: null,
    });
    const h = await redis.hgetall(store.sessionKey('s1'));
    expect(h).toMatchObject({ session_id: 's1', pid: '10', host: 'h', role: 'worker', task: 'T-1' });
    expect(await redis.zscore(store.sessionsKey, 's1')).toBe(h.last_heartbeat_ms);

    await new Promise((r) => setTimeout(r, 5));
    const again = await store.register({ sessionId: 's1', host: 'h', pid: 10, role: 'worker', task: 'T-2' });
    expect(again.status).toBe('refreshed');
    expect(again.session.registered_at).toBe(first.session.registered_at);
    expect(again.session.last_heartbeat > first.session.last_heartbeat).toBe(true);
    expect(again.session.task).toBe('T-2');

    const evs = await events();
    expect(evs).toHaveLength(1);
    expect(evs[0]).toMatchObject({
      tx_id: first.txId,
      tx_kind: 'session.register',
      source: 'coord',
      session_id: 's1',
      resource: null,
      payload: { role: 'worker', task: 'T-1', blob: { a: [1, 2] } },
    });
    expect(evs[0].ts).toBe(first.session.registered_at);

    // Another pid for the same session id is a new registration.
    expect((await store.register({ sessionId: 's1', host: 'h', pid: 11 })).status).toBe('registered');
    expect(await events()).toHaveLength(2);
  });

  it('heartbeat advances last_heartbeat and writes session.heartbeat only when the phase changes or after TTL/3', async () => {
    await store.register({ sessionId: 's1', host: 'h', pid: 1 });
    const quiet = await store.heartbeat('s1');
    expect(quiet.emitted).toBe(false);
    const phased = await store.heartbeat('s1', { phase: 'editing' });
    expect(phased.emitted).toBe(true);
    expect(phased.session.phase).toBe('editing');
    expect((await store.heartbeat('s1', { phase: 'editing' })).emitted).toBe(false);
    expect((await store.heartbeat('s1')).session.phase).toBe('editing');

    // A deployment with a tiny TTL: any gap of TTL/3 counts as "changed".
    await store.setSessionTtl(30);
    await new Promise((r) => setTimeout(r, 15));
    const gap = await store.heartbeat('s1');
    expect(gap.emitted).toBe(true);

    const hb = (await events()).filter((e) => e.tx_kind === 'session.heartbeat');
    expect(hb.map((e) => e.payload)).toEqual([
      { last_heartbeat: phased.session.last_heartbeat, phase: 'editing' },
      { last_heartbeat: gap.session.last_heartbeat, phase: 'editing' },
    ]);
    await expect(store.heartbeat('nobody')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('two sessions contend for a lock: the second gets a conflict naming the owner; unlock by others is refused', async () => {
    await store.register({ sessionId: 'a', host: 'h', pid: 1 });
    await store.register({ sessionId: 'b', host: 'h', pid: 2 });
    const results = await Promise.allSettled([
      store.lock('a', 'repo/main', { reason: 'merge' }),
      store.lock('b', 'repo/main'),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0].reason).toBeInstanceOf(ConflictError);
    const winner = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<CoordStore['lock']>>>).value.lock
      .owner_session_id;
    const loser = winner === 'a' ? 'b' : 'a';
    expect(lost[0].reason.message).toContain(`held by ${winner}`);
    expect(lost[0].reason.details.owner).toBe(winner);

    expect((await store.lock(winner, 'repo/main')).status).toBe('held');
    await expect(store.unlock(loser, 'repo/main')).rejects.toThrow(/refusing to unlock/);
    await expect(store.unlock(loser, 'repo/main')).rejects.toBeInstanceOf(ConflictError);
    const locks = await store.locks();
    expect(locks).toEqual([expect.objectContaining({ resource: 'repo/main', owner_session_id: winner })]);

    await store.unlock(winner, 'repo/main');
    expect(await store.locks()).toEqual([]);
    await expect(store.unlock(winner, 'repo/main')).rejects.toBeInstanceOf(NotFoundError);
    const lockEvents = (await events()).filter((e) => e.tx_kind.startsWith('lock.'));
    expect(
      lockEvents.map((e) => [e.tx_kind, e.resource, e.session_id, (e.payload as { reason?: string }).reason]),
    ).toEqual([
      ['lock.acquire', 'repo/main', winner, winner === 'a' ? 'merge' : undefined],
      ['lock.release', 'repo/main', winner, 'unlock'],
    ]);
  });

  it("forceRelease frees another session's lock as `forced`, once, and refuses when it changed hands", async () => {
    await store.register({ sessionId: 'a', host: 'h', pid: 1 });
    await store.lock('a', 'src/x.ts');
    await expect(store.forceRelease('src/x.ts', 'b')).rejects.toMatchObject({
      message: expect.stringContaining('now held by a'),
      details: { owner: 'a' },
    });
    expect(await store.locks()).toHaveLength(1);
    expect(await store.forceRelease('src/x.ts', 'a')).toMatchObject({ owner: 'a', txId: expect.any(String) });
    expect(await store.locks()).toEqual([]);
    expect((await store.status('a')).locks).toEqual([]);
    await expect(store.forceRelease('src/x.ts')).rejects.toBeInstanceOf(NotFoundError);
    const released = (await events()).filter((e) => e.tx_kind === 'lock.release');
    expect(
      released.map((e) => [e.resource, e.session_id, (e.payload as { reason?: string }).reason]),
    ).toEqual([['src/x.ts', 'a', 'forced']]);
    // The session's own later unlock finds nothing; a new owner can take it.
    await expect(store.unlock('a', 'src/x.ts')).rejects.toBeInstanceOf(NotFoundError);
    expect((await store.lock('b', 'src/x.ts')).status).toBe('acquired');
  });

  it('a lock with --ttl lapses: the next taker releases it as expired', async () => {
    await store.register({ sessionId: 'a', host: 'h', pid: 1 });
    await store.register({ sessionId: 'b', host: 'h', pid: 2 });
    await store.lock('a', 'r', { ttlMs: 20 });
    await new Promise((r) => setTimeout(r, 40));
    const took = await store.lock('b', 'r');
    expect(took.status).toBe('acquired');
    const kinds = (await events())
      .slice(2)
      .map((e) => [e.tx_kind, e.session_id, (e.payload as { reason?: string }).reason]);
    expect(kinds).toEqual([
      ['lock.acquire', 'a', undefined],
      ['lock.release', 'a', 'expired'],
      ['lock.acquire', 'b', undefined],
    ]);
  });

  it('steal: refused while the owner is live, allowed when not live or with --force; old owner gets lock.release stolen', async () => {
    const s = store;
    await s.setSessionTtl(200);
    await s.register({ sessionId: 'owner', host: 'h', pid: 1 });
    await s.register({ sessionId: 'thief', host: 'h', pid: 2 });
    await s.lock('owner', 'db');
    await expect(s.steal('thief', 'db')).rejects.toThrow(/owner is live/);
    const forced = await s.steal('thief', 'db', { force: true });
    expect(forced).toMatchObject({ status: 'acquired', stolenFrom: 'owner' });

    // The owner goes quiet past the TTL: a plain steal works.
    await s.lock('thief', 'db2');
    await s.setSessionTtl(1);
    await new Promise((r) => setTimeout(r, 10));
    const stolen = await s.steal('owner', 'db2');
    expect(stolen.stolenFrom).toBe('thief');

    // A lock taken without registering registers its session, which goes quiet like any other.
    expect(await s.lock('ghost', 'db3')).toMatchObject({ autoRegistered: true });
    await new Promise((r) => setTimeout(r, 10));
    expect((await s.steal('owner', 'db3')).stolenFrom).toBe('ghost');

    const releases = (await events())
      .filter((e) => e.tx_kind === 'lock.release')
      .map((e) => [e.resource, e.session_id, (e.payload as { reason?: string }).reason]);
    expect(releases).toEqual([
      ['db', 'owner', 'stolen'],
      ['db2', 'thief', 'stolen'],
      ['db3', 'ghost', 'stolen'],
    ]);
  });

  it('dereg removes the session, releases its locks and writes session.dereg then lock.release', async () => {
    await store.register({ sessionId: 'a', host: 'h', pid: 1 });
    await store.lock('a', 'x');
    await store.lock('a', 'y');
    const r = await store.dereg('a', 'done');
    expect(r.releasedLocks).toEqual(['x', 'y']);
    expect(await redis.exists(store.sessionKey('a'), store.lockKey('x'), store.lockKey('y'))).toBe(0);
    expect(await store.peers()).toEqual([]);
    const evs = (await events()).slice(-3);
    expect(evs.map((e) => [e.tx_kind, e.resource, e.payload])).toEqual([
      ['session.dereg', null, { reason: 'done' }],
      ['lock.release', 'x', { resource: 'x', owner_session: 'a', reason: 'owner-dereg' }],
      ['lock.release', 'y', { resource: 'y', owner_session: 'a', reason: 'owner-dereg' }],
    ]);
    await expect(store.dereg('a')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('TTL expiry: expiredSessions lists the stale, evictIfExpired evicts exactly once across concurrent callers', async () => {
    await store.register({ sessionId: 'old', host: 'h', pid: 1 });
    await store.register({ sessionId: 'fresh', host: 'h', pid: 2 });
    await store.lock('old', 'res');
    await store.setSessionTtl(30_000);
    const now = Date.now() + 60_000; // a minute later on the test's clock
    expect(await store.expiredSessions(now)).toEqual(expect.arrayContaining(['old', 'fresh']));
    expect(await store.expiredSessions()).toEqual([]);

    const live = await store.evictIfExpired('old');
    expect(live).toMatchObject({ evicted: false, reason: 'live' });

    // Three "replicas" race: one script run wins.
    const other = new RespClient(testRedisUrl());
    const replicas = [
      store,
      new CoordStore(other, { keyspace: ks }),
      new CoordStore(redis, { keyspace: ks }),
    ];
    const results = await Promise.all(replicas.map((r) => r.evictIfExpired('old', now)));
    other.disconnect();
    expect(results.filter((r) => r.evicted)).toHaveLength(1);
    expect(results.filter((r) => !r.evicted)).toEqual([
      { evicted: false, reason: 'missing' },
      { evicted: false, reason: 'missing' },
    ]);
    const won = results.find((r) => r.evicted)!;
    expect(won).toMatchObject({ releasedLocks: ['res'] });

    const evs = (await events()).filter((e) => e.session_id === 'old').slice(-2);
    expect(evs.map((e) => [e.tx_kind, e.payload])).toEqual([
      ['session.dereg', { reason: 'ttl-expired' }],
      ['lock.release', { resource: 'res', owner_session: 'old', reason: 'owner-evicted' }],
    ]);
    expect((await store.listSessions()).map((s) => s.session_id)).toEqual(['fresh']);
    expect(await redis.exists(store.lockKey('res'))).toBe(0);
  });

  it('inbox: send writes inbox.deliver without the body; recv peeks; drain takes all; follow is woken by a push', async () => {
    await store.register({ sessionId: 'rx', host: 'h', pid: 1 });
    expect(await store.drain('rx')).toEqual([]);
    const m1 = await store.send('tx', 'rx', 'secret body 1', { kind: 'note', subject: 'hello' });
    await store.send('tx', 'rx', 'secret body 2');
    expect((await store.inbox('rx')).map((m) => m.body)).toEqual(['secret body 1', 'secret body 2']);
    const drained = await store.drain('rx');
    expect(drained.map((m) => [m.body, m.kind, m.subject, m.from_session, m.to_session])).toEqual([
      ['secret body 1', 'note', 'hello', 'tx', 'rx'],
      ['secret body 2', 'message', '', 'tx', 'rx'],
    ]);
    expect(await store.drain('rx')).toEqual([]);

    const deliver = (await events()).filter((e) => e.tx_kind === 'inbox.deliver');
    expect(deliver[0].payload).toEqual({
      to_session: 'rx',
      msg_id: m1.message.msg_id,
      kind: 'note',
      from_session: 'tx',
      subject: 'hello',
    });
    const raw = await redis.xrange(ks.coordEvents, '-', '+');
    expect(JSON.stringify(raw)).not.toContain('secret body');

    await expect(store.send('tx', 'nobody', 'x')).rejects.toBeInstanceOf(NotFoundError);

    // follow: blocks on its own connection until a push arrives.
    const waiter = new RespClient(testRedisUrl());
    const followed = new CoordStore(waiter, { keyspace: ks }).follow('rx', 5000);
    const before = Date.now();
    await new Promise((r) => setTimeout(r, 50));
    await store.send('tx', 'rx', 'wake up');
    const got = await followed;
    waiter.disconnect();
    expect(got.map((m) => m.body)).toEqual(['wake up']);
    expect(Date.now() - before).toBeLessThan(4000);
    // A timeout with nothing queued resolves [].
    expect(await store.follow('rx', 50)).toEqual([]);
  });

  describe('a read that fails deletes nothing (at-least-once inbox)', () => {
    async function fill(n: number, bytes = 16): Promise<string[]> {
      const bodies = Array.from({ length: n }, (_, i) => `${String(i).padStart(5, '0')}${'x'.repeat(bytes)}`);
      for (const b of bodies) await store.send('tx', 'rx', b, { allowUnknownPeer: true });
      return bodies;
    }

    it('drain takes one bounded page and removes exactly those messages, only after delivery', async () => {
      const bodies = await fill(7);
      const seen: string[] = [];
      const page = await store.drain('rx', {
        limit: 3,
        deliver: async (ms) => {
          // Nothing is removed while the reader is still receiving the page.
          expect(await redis.llen(store.inboxKey('rx'))).toBe(7);
          seen.push(...ms.map((m) => m.body));
        },
      });
      expect(page.map((m) => m.body)).toEqual(bodies.slice(0, 3));
      expect(seen).toEqual(bodies.slice(0, 3));
      expect((await store.inbox('rx', { limit: 100 })).map((m) => m.body)).toEqual(bodies.slice(3));
    });

    it('a reader that fails while taking the page leaves every message in the inbox', async () => {
      const bodies = await fill(5);
      await expect(
        store.drain('rx', {
          deliver: () => {
            throw new Error('stdout closed');
          },
        }),
      ).rejects.toThrow('stdout closed');
      expect((await store.inbox('rx')).map((m) => m.body)).toEqual(bodies);
    });

    it('a message sent while a page is in flight is not removed with it', async () => {
      await fill(2);
      await store.drain('rx', {
        deliver: () => store.send('tx', 'rx', 'late', { allowUnknownPeer: true }).then(() => undefined),
      });
      expect((await store.inbox('rx')).map((m) => m.body)).toEqual(['late']);
    });

    it('a reply that does not arrive in time removes nothing, and is not called "redis unavailable"', async () => {
      const bodies = await fill(300, 10_240);
      const slow = new RespClient(testRedisUrl(), { commandTimeoutMs: 1 });
      const err = await new CoordStore(slow, { keyspace: ks })
        .drain('rx', { limit: 300 })
        .catch((e: Error) => e);
      slow.disconnect();
      expect(err).toBeInstanceOf(UnavailableError);
      expect((err as Error).message).toMatch(/did not reply in time.*--limit.*COORD_REDIS_TIMEOUT/);
      expect(await redis.llen(store.inboxKey('rx'))).toBe(bodies.length);
    });

    it('recv pages: the default page is bounded, --limit chooses it, bad limits are refused', async () => {
      await fill(150);
      expect(await store.inbox('rx')).toHaveLength(100);
      expect(await store.inbox('rx', { limit: 120 })).toHaveLength(120);
      for (const bad of [0, -1, 1.5, 10_001]) {
        await expect(store.inbox('rx', { limit: bad })).rejects.toThrow(
          /limit must be an integer from 1 to 10000/,
        );
      }
    });

    it('follow waits without taking: a follower that gives up loses nothing', async () => {
      const waiter = new RespClient(testRedisUrl(), { commandTimeoutMs: 0 });
      const followed = new CoordStore(waiter, { keyspace: ks }).follow('rx', 5000, { limit: 1 });
      await new Promise((r) => setTimeout(r, 50));
      await fill(2);
      expect((await followed).map((m) => m.body)).toHaveLength(1);
      waiter.disconnect();
      expect(await redis.llen(store.inboxKey('rx'))).toBe(1);
    });

    it('refuses a body over the size limit and a send to a full inbox, naming the setting; nothing is delivered', async () => {
      const bounded = new CoordStore(resp, { keyspace: ks, maxMessageBytes: 100, maxInboxDepth: 3 });
      await expect(bounded.send('tx', 'rx', 'é'.repeat(51), { allowUnknownPeer: true })).rejects.toThrow(
        /102 bytes, over the 100-byte limit \(COORD_MAX_MESSAGE_BYTES\)/,
      );
      for (let i = 0; i < 3; i++) await bounded.send('tx', 'rx', `m${i}`, { allowUnknownPeer: true });
      const full = await bounded
        .send('tx', 'rx', 'one too many', { allowUnknownPeer: true })
        .catch((e: Error) => e);
      expect(full).toBeInstanceOf(ConflictError);
      expect((full as Error).message).toMatch(/inbox of rx is full \(3 messages, limit 3: COORD_INBOX_MAX\)/);
      expect((await store.inbox('rx')).map((m) => m.body)).toEqual(['m0', 'm1', 'm2']);
      expect((await events()).filter((e) => e.tx_kind === 'inbox.deliver')).toHaveLength(3);
    });
  });

  it('dispatch issues an order with dispatch.issue; identical re-issue is a no-op, a different one conflicts', async () => {
    const r = await store.dispatch('hyper', 'worker-1', 'TOD-1', 'order-1');
    expect(r).toMatchObject({
      issued: true,
      order: { order_id: 'order-1', assignee: 'worker-1', ticket: 'TOD-1', issued_by: 'hyper' },
    });
    expect((await store.dispatch('hyper', 'worker-1', 'TOD-1', 'order-1')).issued).toBe(false);
    await expect(store.dispatch('hyper', 'worker-2', 'TOD-1', 'order-1')).rejects.toBeInstanceOf(
      ConflictError,
    );
    const gen = await store.dispatch('hyper', 'worker-2', 'TOD-2');
    expect(gen.order.order_id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect((await store.dispatches()).map((o) => o.order_id)).toEqual(['order-1', gen.order.order_id]);
    const evs = (await events()).filter((e) => e.tx_kind === 'dispatch.issue');
    expect(evs.map((e) => e.payload)).toEqual([
      { order_id: 'order-1', assignee: 'worker-1', ticket: 'TOD-1' },
      { order_id: gen.order.order_id, assignee: 'worker-2', ticket: 'TOD-2' },
    ]);
  });

  it('tx_ids strictly increase across writers in stream order, and every event decodes with the codec', async () => {
    const clients = [new RespClient(testRedisUrl()), new RespClient(testRedisUrl())];
    const stores = clients.map((c) => new CoordStore(c, { keyspace: ks }));
    await Promise.all(
      Array.from({ length: 60 }, (_, i) => stores[i % 2].register({ sessionId: `s${i}`, host: 'h', pid: i })),
    );
    clients.forEach((c) => c.disconnect());
    const ids = (await events()).map((e) => e.tx_id);
    expect(ids).toHaveLength(60);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(60);
  });

  it('status shows the session, its locks, inbox depth and peer counts', async () => {
    await store.register({ sessionId: 'me', host: 'h', pid: 1 });
    await store.register({ sessionId: 'you', host: 'h', pid: 2 });
    await store.lock('me', 'mine');
    await store.lock('you', 'yours');
    await store.send('you', 'me', 'hi');
    const st = await store.status('me');
    expect(st).toMatchObject({
      session_id: 'me',
      session: { session_id: 'me', live: true },
      inbox_depth: 1,
      peers: { total: 2, live: 2 },
      session_ttl_s: 300,
    });
    expect(st.locks.map((l) => l.resource)).toEqual(['mine']);
  });

  it('dual-writes the COORD_ROOT file layout atomically', async () => {
    const root = mkdtempSync(join(tmpdir(), 'coord-root-'));
    try {
      const s = new CoordStore(resp, { keyspace: ks, mirror: new FileMirror(root) });
      await s.register({ sessionId: 'f1', host: 'h', pid: 7, role: 'r', task: 't', blob: { k: 1 } });
      await s.heartbeat('f1', { phase: 'p' });
      const sess = JSON.parse(readFileSync(join(root, 'sessions', 'f1.json'), 'utf8'));
      expect(Object.keys(sess)).toEqual([
        'session_id',
        'pid',
        'host',
        'role',
        'task',
        'blob',
        'phase',
        'registered_at',
        'last_heartbeat',
      ]);
      expect(sess).toMatchObject({ session_id: 'f1', pid: 7, blob: { k: 1 }, phase: 'p' });

      await s.lock('f1', 'build', { ttlMs: 60_000, reason: 'ci' });
      const rec = JSON.parse(readFileSync(join(root, 'locks', 'build', 'record.json'), 'utf8'));
      expect(Object.keys(rec)).toEqual([
        'resource',
        'owner_session_id',
        'owner_pid',
        'acquired_at',
        'expires_at',
        'reason',
      ]);
      expect(rec).toMatchObject({ owner_session_id: 'f1', reason: 'ci' });
      expect(readFileSync(join(root, 'locks', 'build', 'owner'), 'utf8')).toBe('f1\n');

      const sent = await s.send('f1', 'f1', 'note to self');
      expect(
        JSON.parse(readFileSync(join(root, 'messages', 'inbox-f1', `${sent.message.msg_id}.json`), 'utf8'))
          .body,
      ).toBe('note to self');
      await s.drain('f1');
      expect(readdirSync(join(root, 'messages', 'inbox-f1'))).toEqual([]);

      await s.dispatch('f1', 'w', 'TOD-9', 'o-9');
      expect(JSON.parse(readFileSync(join(root, 'dispatch-orders', 'o-9.json'), 'utf8'))).toMatchObject({
        order_id: 'o-9',
        assignee: 'w',
        ticket: 'TOD-9',
      });

      await s.unlock('f1', 'build');
      expect(existsSync(join(root, 'locks', 'build'))).toBe(false);
      await s.dereg('f1');
      expect(existsSync(join(root, 'sessions', 'f1.json'))).toBe(false);
      expect(readdirSync(join(root, 'sessions')).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('keeps the COORD_ROOT mirror working for resource names past NAME_MAX, and they round-trip for readers', async () => {
    const root = mkdtempSync(join(tmpdir(), 'coord-root-'));
    const problems: Error[] = [];
    try {
      const s = new CoordStore(resp, {
        keyspace: ks,
        mirror: new FileMirror(root),
        onMirrorError: (e) => problems.push(e),
      });
      await s.register({ sessionId: 'f1', host: 'h', pid: 7 });
      // 256 characters: plain (256 bytes), multi-byte (1 536 encoded), one that differs only at the end.
      const names = [
        'a'.repeat(256),
        'é'.repeat(256),
        `${'é'.repeat(255)}x`,
        'src/' + 'deep/'.repeat(49) + 'f.ts',
      ];
      for (const n of names) await s.lock('f1', n, { ttlMs: 60_000 });
      expect(problems).toEqual([]);
      const dirs = readdirSync(join(root, 'locks'));
      expect(dirs).toHaveLength(names.length);
      for (const d of dirs) expect(Buffer.byteLength(d)).toBeLessThanOrEqual(255);
      const snap = await readCoordRoot(root);
      expect(Object.keys(snap.locks).sort()).toEqual([...names].sort());
      for (const n of names) expect(snap.locks[n]).toMatchObject({ resource: n, owner_session: 'f1' });
      for (const n of names) await s.unlock('f1', n);
      expect(readdirSync(join(root, 'locks'))).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('Redis down: every op fails fast with UnavailableError', async () => {
    const dead = new RespClient(`redis://127.0.0.1:${await freePort()}`, { connectTimeoutMs: 500 });
    const s = new CoordStore(dead, { keyspace: ks });
    const t0 = Date.now();
    await expect(s.register({ sessionId: 'x', host: 'h', pid: 1 })).rejects.toBeInstanceOf(UnavailableError);
    expect(Date.now() - t0).toBeLessThan(1000);
    dead.disconnect();
  });
});
