import Redis from 'ioredis';
import { CoordStore } from '@coordbus/coord';
import { Keyspace } from '@coordbus/envelope';
import { cleanupNamespace, testKeyspace, testRedisUrl, waitFor } from '@coordbus/testing';
import { Archivist, removeDir, startArchivist } from './harness';

jest.setTimeout(60_000);

const READ = 'console-read-token-0123456789';
const OP = 'console-operator-token-0123456789';

/** Reads an SSE response until `until` holds or the time runs out; returns the events seen. */
async function readSse(
  url: string,
  headers: Record<string, string>,
  until: (events: { id: string; event: string; data: string }[]) => boolean,
  timeoutMs = 5000,
): Promise<{ status: number; events: { id: string; event: string; data: string }[] }> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  const res = await fetch(url, { headers, signal: ctl.signal });
  const events: { id: string; event: string; data: string }[] = [];
  if (res.status !== 200 || !res.body) {
    clearTimeout(timer);
    return { status: res.status, events };
  }
  const reader = res.body.getReader();
  let buf = '';
  try {
    while (!until(events)) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += Buffer.from(value).toString();
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const get = (f: string) => new RegExp(`^${f}: (.*)$`, 'm').exec(block)?.[1] ?? '';
        if (get('event')) events.push({ id: get('id'), event: get('event'), data: get('data') });
      }
    }
  } catch {
    /* aborted: return what arrived */
  } finally {
    clearTimeout(timer);
    ctl.abort();
  }
  return { status: res.status, events };
}

describe('fleet console API (built service)', () => {
  let ks: Keyspace;
  let redis: Redis;
  let store: CoordStore;
  let a: Archivist;
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${a.url}${path}`, { headers });
    return { status: res.status, text: await res.text(), headers: res.headers };
  };
  const post = (path: string, body: unknown, headers: Record<string, string>) =>
    fetch(`${a.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    ks = testKeyspace('console');
    redis = new Redis(testRedisUrl());
    store = new CoordStore(redis, { keyspace: ks });
    a = await startArchivist(ks, testRedisUrl(), {
      COORDBUS_API_TOKEN: READ,
      COORDBUS_OPERATOR_TOKEN: OP,
      CONSOLE_POLL_MS: '50',
    });
  });

  afterAll(async () => {
    await a?.stop();
    if (a) removeDir(a.dataDir);
    await cleanupNamespace(redis, ks);
    redis.disconnect();
  });

  it('serves the page shell without a token, and refuses its data and live feed without one', async () => {
    const page = await get('/', { accept: 'text/html' });
    expect(page.status).toBe(200);
    expect(page.text).toContain('/console/assets/app.js');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect((await get('/console/assets/app.js')).status).toBe(200);
    expect((await get('/console/assets/../../package.json')).status).toBe(404);
    expect((await get('/v1/console/snapshot')).status).toBe(401);
    expect((await get('/v1/console/live')).status).toBe(401);
    expect((await get('/v1/console/snapshot', bearer('wrong-token-0123456789'))).status).toBe(401);
    expect((await get('/v1/console/whoami', bearer(READ))).text).toContain('"level":"read"');
  });

  it('never sends a registration blob, message body or token to the page', async () => {
    await store.register({
      sessionId: 'blobby',
      host: 'h',
      pid: 1,
      task: 'T',
      blob: { password: 'blob-secret-value' },
    });
    await store.send('blobby', 'blobby', 'body-secret-value');
    const snap = await get('/v1/console/snapshot', bearer(READ));
    expect(snap.status).toBe(200);
    expect(snap.text).toContain('"session":"blobby"');
    expect(snap.text).not.toContain('blob-secret-value');
    expect(snap.text).not.toContain('body-secret-value');
    expect(snap.text).not.toContain(READ);
  });

  it('lists the sessions that ended last with role, task and reason, not one registered again', async () => {
    await store.register({ sessionId: 'gone-a', host: 'h', pid: 1, role: 'dev', task: 'finished work' });
    await store.register({ sessionId: 'gone-b', host: 'h', pid: 2, role: 'tester', task: 'went silent' });
    await store.register({ sessionId: 'back-c', host: 'h', pid: 3, task: 'first run' });
    await store.dereg('gone-a');
    await store.dereg('gone-b', 'ttl-expired');
    await store.dereg('back-c');
    await store.register({ sessionId: 'back-c', host: 'h', pid: 4, task: 'second run' });
    type Snap = {
      sessions: { session: string }[];
      ended: { session: string; role: string | null; task: string | null; state: string }[];
    };
    const snap = async () => JSON.parse((await get('/v1/console/snapshot', bearer(READ))).text) as Snap;
    // The archivist archives asynchronously: wait for both ends.
    await waitFor(
      async () => (await snap()).ended.filter((e) => e.session.startsWith('gone-')).length === 2,
      'both ended sessions in the snapshot',
      20_000,
      100,
    );
    const s = await snap();
    expect(s.ended).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          session: 'gone-a',
          role: 'dev',
          task: 'finished work',
          state: 'deregistered',
        }),
        expect.objectContaining({ session: 'gone-b', role: 'tester', task: 'went silent', state: 'culled' }),
      ]),
    );
    expect(s.ended.map((e) => e.session)).not.toContain('back-c');
    expect(s.sessions.map((x) => x.session)).toContain('back-c');
  });

  it('searches the archive by ticket, subject words or session id, newest first, a page at a time', async () => {
    await store.register({ sessionId: 'searcher', host: 'h', pid: 1, task: 'find things' });
    await store.register({ sessionId: 'worker', host: 'h', pid: 1, task: 'do things' });
    await store.dispatch('searcher', 'worker', 'SRCH-77');
    await store.send('searcher', 'worker', 'body-never-archived', { subject: 'quarterly numbers ready' });
    type Found = {
      results: { kind: string; session: string; summary: string }[];
      next_cursor: string | null;
    };
    const search = async (q: string, cursor?: string) => {
      const res = await get(
        `/v1/console/search?q=${encodeURIComponent(q)}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        bearer(READ),
      );
      expect(res.status).toBe(200);
      return JSON.parse(res.text) as Found;
    };
    // The archivist archives asynchronously: wait for the ticket's event.
    await waitFor(
      async () => (await search('srch-77')).results.length > 0,
      'the dispatch in the archive',
      20_000,
      100,
    );
    const ticket = await search('SRCH-77');
    // An order's event is its assignee's.
    expect(ticket.results).toEqual([
      expect.objectContaining({
        kind: 'dispatch.issue',
        session: 'worker',
        summary: expect.stringContaining('ticket=SRCH-77'),
      }),
    ]);
    await waitFor(
      async () => (await search('quarterly numb')).results.length > 0,
      'the message in the archive',
      20_000,
      100,
    );
    expect((await search('quarterly numb')).results).toEqual([
      // An inbox.deliver event is the recipient's.
      expect.objectContaining({ kind: 'inbox.deliver', session: 'worker' }),
    ]);
    expect((await search('body-never-archived')).results).toEqual([]);
    // A session id finds that session's entries (its own ops and events), in pages of 50.
    const all: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Found = await search('searcher', cursor ?? undefined);
      expect(page.results.length).toBeLessThanOrEqual(50);
      all.push(...page.results.map((r) => r.kind));
      cursor = page.next_cursor;
    } while (cursor);
    // Its own events, and the message it sent (the sender is a word of that event: from_session).
    expect(all).toEqual(expect.arrayContaining(['session.register', 'inbox.deliver']));
    expect(all).not.toContain('dispatch.issue');
    expect((await get('/v1/console/search?q=x&cursor=nonsense', bearer(READ))).status).toBe(400);
  });

  it('the live feed resumes after Last-Event-ID with exactly what was missed', async () => {
    const { cursor } = JSON.parse((await get('/v1/console/snapshot', bearer(READ))).text) as {
      cursor: string;
    };
    await store.register({ sessionId: 'late-1', host: 'h', pid: 2 });
    await store.register({ sessionId: 'late-2', host: 'h', pid: 3 });
    const kinds = (events: { event: string; data: string }[]) =>
      events
        .filter((e) => e.event === 'batch')
        .flatMap((e) => JSON.parse(e.data) as { k: string; session?: string }[])
        .filter((i) => i.k === 'session.register')
        .map((i) => i.session);
    const first = await readSse(
      `${a.url}/v1/console/live`,
      { ...bearer(READ), 'last-event-id': cursor },
      (ev) => kinds(ev).length >= 2,
    );
    expect(kinds(first.events)).toEqual(['late-1', 'late-2']);
    const last = first.events[first.events.length - 1].id;
    await store.register({ sessionId: 'late-3', host: 'h', pid: 4 });
    const second = await readSse(
      `${a.url}/v1/console/live`,
      { ...bearer(READ), 'last-event-id': last },
      (ev) => kinds(ev).length >= 1,
    );
    expect(kinds(second.events)).toEqual(['late-3']);
    expect((await get('/v1/console/live', { ...bearer(READ), 'last-event-id': 'ce=0x1' })).status).toBe(400);
  });

  it('actions need the operator token and the action header, and every attempt is audited', async () => {
    await store.register({ sessionId: 'holder', host: 'h', pid: 5 });
    await store.lock('holder', 'src/held.ts');
    const body = { resource: 'src/held.ts', owner: 'holder', reason: 'session is stuck' };
    const action = { 'x-coordbus-action': '1' };
    expect(
      (await post('/v1/console/actions/force-release', body, { ...bearer(READ), ...action })).status,
    ).toBe(403);
    expect((await post('/v1/console/actions/force-release', body, bearer(OP))).status).toBe(403);
    expect(
      (await post('/v1/console/actions/force-release', { ...body, reason: '' }, { ...bearer(OP), ...action }))
        .status,
    ).toBe(400);
    const ok = await post('/v1/console/actions/force-release', body, { ...bearer(OP), ...action });
    expect(ok.status).toBe(201);
    expect(await store.locks()).toEqual([]);
    const again = await post('/v1/console/actions/force-release', body, { ...bearer(OP), ...action });
    expect(again.status).toBe(404);
    const snap = JSON.parse((await get('/v1/console/snapshot', bearer(READ))).text) as {
      audit: { action: string; target: string; reason: string; result: string }[];
    };
    expect(snap.audit.slice(0, 2).map((x) => [x.action, x.target, x.reason, x.result])).toEqual([
      ['lock.force-release', 'src/held.ts', 'session is stuck', 'refused'],
      ['lock.force-release', 'src/held.ts', 'session is stuck', 'ok'],
    ]);
    const released = (await redis.xrange(ks.coordEvents, '-', '+'))
      .map(([, f]) => f[5])
      .filter((d) => d.includes('"forced"'));
    expect(released).toHaveLength(1);
  });

  it('the login form sets an HttpOnly SameSite=Strict cookie that reads (and refuses a wrong token)', async () => {
    expect((await post('/console/login', { token: 'not-the-token-0123' }, {})).status).toBe(401);
    const res = await post('/console/login', { token: READ }, {});
    expect(res.status).toBe(201);
    const cookie = res.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^coordbus_read=.*; HttpOnly; SameSite=Strict; Path=\//);
    const pair = cookie.split(';')[0];
    expect((await get('/v1/console/snapshot', { cookie: pair })).status).toBe(200);
    expect(
      (
        await post(
          '/v1/console/actions/dispatch',
          { assignee: 'x', ticket: 'T' },
          { cookie: pair, 'x-coordbus-action': '1' },
        )
      ).status,
    ).toBe(403);
  });

  it('stops promptly on SIGTERM while browsers hold the live feed open', async () => {
    const b = await startArchivist(ks, testRedisUrl(), { COORDBUS_API_TOKEN: READ });
    const ctl = new AbortController();
    const res = await fetch(`${b.url}/v1/console/live`, { headers: bearer(READ), signal: ctl.signal });
    expect(res.status).toBe(200);
    const t0 = Date.now();
    const code = await b.stop();
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    ctl.abort();
    removeDir(b.dataDir);
  });

  it('loads the snapshot of 1 000 live sessions and their locks whole: every session, every lock with its owner (speed: bench/console)', async () => {
    const pipe = redis.pipeline();
    const now = Date.now();
    for (let i = 0; i < 1000; i++) {
      const id = `fleet-${i}`;
      pipe.hset(ks.coordKey(`session:${id}`), {
        session_id: id,
        host: 'h',
        pid: String(i),
        role: 'dev',
        task: `task ${i}`,
        registered_at: new Date(now).toISOString(),
        last_heartbeat: new Date(now).toISOString(),
        last_heartbeat_ms: String(now),
      });
      pipe.zadd(ks.coordKey('sessions'), now, id);
      if (i % 2) {
        pipe.hset(ks.coordKey(`lock:r-${i}`), {
          resource: `r-${i}`,
          owner_session_id: id,
          acquired_at: new Date(now).toISOString(),
        });
        pipe.zadd(ks.coordKey('locks'), now, `r-${i}`);
      }
    }
    await pipe.exec();
    const snap = JSON.parse((await get('/v1/console/snapshot', bearer(READ))).text) as {
      sessions: { session: string }[];
      locks: { resource: string; owner: string }[];
    };
    const ids = new Set(snap.sessions.map((s) => s.session));
    for (let i = 0; i < 1000; i++) expect(ids.has(`fleet-${i}`)).toBe(true);
    const owners = new Map(snap.locks.map((l) => [l.resource, l.owner]));
    for (let i = 1; i < 1000; i += 2) expect(owners.get(`r-${i}`)).toBe(`fleet-${i}`);
  });
});
