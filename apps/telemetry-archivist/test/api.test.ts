import Database from 'better-sqlite3';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { Keyspace, Schemas, newUlid } from '@coordbus/envelope';
import { Client } from 'pg';
import { pgConnectionConfig } from '../src/store/postgres-archive-store';
import { LATEST_SCHEMA_VERSION } from '../src/store/migrations';
import { cleanupNamespace, runServiceToExit, testKeyspace, testRedisUrl, waitFor } from '@coordbus/testing';
import {
  Archivist,
  PG_URL,
  coordEvent,
  coordOp,
  countEvents,
  removeDir,
  startArchivist,
  waitForCount,
  xadd,
} from './harness';

jest.setTimeout(60_000);

type EventsBody = {
  events: Array<Record<string, unknown> & { id: string; data: Record<string, unknown> }>;
  next_cursor: string | null;
};

describe('telemetry-archivist HTTP API (built service, SQLite)', () => {
  let keyspace: Keyspace;
  let redis: Redis;
  let archivist: Archivist;

  beforeAll(async () => {
    keyspace = testKeyspace('arch-api');
    redis = new Redis(testRedisUrl());
    // 30 coord ops: sessions alternate, every third is `msg`, one error.
    for (let i = 0; i < 30; i++) {
      await xadd(
        redis,
        keyspace.coordIngest,
        Schemas.coordOp,
        coordOp(i, {
          session: i % 2 ? 'odd' : 'even',
          op: i % 3 ? 'lock' : 'msg',
          level: i === 5 ? 'error' : 'info',
        }),
      );
    }
    // Invalid entries: the transport dead-letters them and the archivist archives the dead letters.
    await redis.xadd(
      keyspace.coordIngest,
      '*',
      'type',
      'coord-op',
      'v',
      '0',
      'data',
      JSON.stringify({ ...coordOp(99, { session: 'bad' }), level: 'loud' }),
    );
    await redis.xadd(
      keyspace.coordEvents,
      '*',
      'type',
      'coord-event',
      'v',
      '1',
      'data',
      '{"not":"an event"}',
    );
    const t = (s: number) => new Date(Date.UTC(2026, 5, 1, 11, 0, s)).toISOString();
    await xadd(
      redis,
      keyspace.coordEvents,
      Schemas.coordEvent,
      coordEvent('session.register', 'alive', t(0), { role: 'dev', task: 'T-1', blob: null }) as never,
    );
    await xadd(
      redis,
      keyspace.coordEvents,
      Schemas.coordEvent,
      coordEvent('session.heartbeat', 'alive', t(30), { last_heartbeat: t(30), phase: 'edit' }) as never,
    );
    await xadd(
      redis,
      keyspace.coordEvents,
      Schemas.coordEvent,
      coordEvent('session.register', 'culled', t(1), { role: 'qa', task: 'T-2', blob: null }) as never,
    );
    await xadd(
      redis,
      keyspace.coordEvents,
      Schemas.coordEvent,
      coordEvent('session.dereg', 'culled', t(20), { reason: 'ttl-expired' }, 'sentinel') as never,
    );
    // Two breaches (one ok, one stall), then two episodes: only those are episodes.
    for (const [i, status] of (['ok', 'stall', 'degraded', 'stall'] as const).entries()) {
      const episode = i >= 2;
      await xadd(redis, keyspace.telemetryEvents, Schemas.telemetry, {
        source: 'headroom',
        event: episode ? 'overhead.episode' : 'overhead',
        status,
        duration_ms: 100 * (i + 1),
        detail: { kind: episode ? 'episode' : 'breach', n: i },
        ts: t(40 + i),
      });
    }
    archivist = await startArchivist(keyspace, testRedisUrl());
    await waitForCount(
      archivist,
      'stream=coordIngest,coordEvents,telemetryEvents,coordIngest:dead,coordEvents:dead',
      30 + 4 + 4 + 2,
    );
  });

  afterAll(async () => {
    await archivist?.stop();
    if (archivist) removeDir(archivist.dataDir);
    await cleanupNamespace(redis, keyspace);
    redis.disconnect();
  });

  const count = (q: string) => countEvents(archivist, q);

  it('filters by stream, op/kind, session, resource, level, source and event time', async () => {
    expect(await count('stream=coordIngest')).toBe(30);
    expect(await count('stream=coordIngest&op=msg')).toBe(10);
    expect(await count('kind=msg,session.register')).toBe(12);
    expect(await count('stream=coordIngest&session=odd')).toBe(15);
    expect(await count('stream=coordIngest&resource=res-1')).toBe(10);
    expect(await count('level=error')).toBe(1);
    expect(await count('source=sentinel')).toBe(1);
    expect(await count('stream=coordIngest&since=2026-06-01T10:00:10Z&until=2026-06-01T10:00:19Z')).toBe(10);
    // Text search: the words of a task, of a dereg reason; a query without a word finds nothing.
    expect(await count('q=T-2')).toBe(1);
    expect(await count('q=TTL%20expired&stream=coordEvents')).toBe(1);
    expect(await count('q=--')).toBe(0);
    const { body } = await archivist.get<EventsBody>('/v1/events?stream=coordIngest&level=error');
    expect(body.events[0]).toMatchObject({
      stream: 'coordIngest',
      type: 'coord-op',
      v: 0,
      kind: 'lock',
      session: 'odd',
      level: 'error',
    });
    expect(body.events[0].data).toEqual(coordOp(5, { session: 'odd', op: 'lock', level: 'error' }));
  });

  it('takes since/until as the CLI does: relative durations, RFC 3339 and epoch milliseconds', async () => {
    // The fixtures are dated 2026-06-01; "now" is later, so 1h ago is after all of them.
    expect(await count('stream=coordIngest&since=3650d')).toBe(30);
    expect(await count('stream=coordIngest&since=1h')).toBe(0);
    expect(await count('stream=coordIngest&until=1h')).toBe(30);
    const ms = (iso: string) => String(Date.parse(iso));
    expect(
      await count(
        `stream=coordIngest&since=${ms('2026-06-01T10:00:10Z')}&until=${ms('2026-06-01T10:00:19Z')}`,
      ),
    ).toBe(10);
    expect(
      await count(`stream=coordIngest&since=2026-06-01T10:00:10Z&until=${ms('2026-06-01T10:00:19Z')}`),
    ).toBe(10);
    const sessions = await archivist.get<{ sessions: unknown[] }>('/v1/sessions?since=3650d');
    expect(sessions.body.sessions).toHaveLength(2);
    expect((await archivist.get<{ sessions: unknown[] }>('/v1/sessions?since=1h')).body.sessions).toEqual([]);
    const episodes = await archivist.get<{ episodes: unknown[] }>(
      '/v1/telemetry/episodes?since=3650d&until=1m',
    );
    expect(episodes.status).toBe(200);
    expect(episodes.body.episodes.length).toBeGreaterThan(0);
    const bad = await archivist.get<{ message: string[] }>('/v1/sessions?since=2h%20ago');
    expect(bad.status).toBe(400);
    expect(bad.body.message.join('; ')).toContain('since must be an RFC 3339 time');
  });

  it('answers /v1 (and /v1/, and / for JSON clients) with an index of its real routes', async () => {
    type Index = {
      service: string;
      endpoints: Array<{
        method: string;
        path: string;
        query: string[];
        description: string;
        access: string;
      }>;
    };
    const index = await archivist.get<Index>('/v1');
    expect(index.status).toBe(200);
    const { endpoints } = index.body;
    const find = (method: string, path: string) =>
      endpoints.find((e) => e.method === method && e.path === path);
    expect(find('GET', '/v1/events')).toMatchObject({ access: 'read' });
    expect(find('GET', '/v1/events')?.query).toEqual(
      expect.arrayContaining([
        'stream',
        'kind',
        'op',
        'session',
        'since',
        'until',
        'until_id',
        'cursor',
        'limit',
      ]),
    );
    expect(find('GET', '/v1/telemetry/episodes')?.query).toEqual(
      expect.arrayContaining(['source', 'event', 'status', 'since', 'until']),
    );
    expect(find('GET', '/v1/console/live')?.query).toEqual(['cursor']);
    expect(find('POST', '/v1/console/actions/redrive')).toMatchObject({ access: 'operator' });
    expect(find('GET', '/healthz')).toMatchObject({ access: 'none' });
    expect(find('GET', '/v1')).toMatchObject({ access: 'read' });
    for (const e of endpoints) expect(typeof e.description).toBe('string');
    // Every GET route without a path parameter (the SSE feed aside) answers: none is made up.
    for (const e of endpoints.filter(
      (x) => x.method === 'GET' && !x.path.includes(':') && x.path !== '/v1/console/live',
    )) {
      const res = await fetch(`${archivist.url}${e.path}`, { headers: { accept: 'application/json' } });
      expect([e.path, res.status]).not.toEqual([e.path, 404]);
    }
    expect((await archivist.get<Index>('/v1/')).body).toEqual(index.body);
    const root = await fetch(`${archivist.url}/`, { headers: { accept: 'application/json' } });
    expect(root.headers.get('content-type')).toContain('application/json');
    expect(await root.json()).toEqual(index.body);
    for (const accept of ['text/html', 'application/json, text/html', '*/*']) {
      const page = await fetch(`${archivist.url}/`, { headers: { accept } });
      expect([accept, page.headers.get('content-type')]).toEqual([
        accept,
        expect.stringContaining('text/html'),
      ]);
    }
  });

  it('pages with an opaque cursor in stream order, without skipping or repeating, both ways', async () => {
    const ids = async (order: string) => {
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res: { status: number; body: EventsBody } = await archivist.get(
          `/v1/events?stream=coordIngest&limit=7&order=${order}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        );
        expect(res.status).toBe(200);
        expect(res.body.events.length).toBeLessThanOrEqual(7);
        seen.push(...res.body.events.map((e) => e.id));
        cursor = res.body.next_cursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(5);
      return seen;
    };
    const asc = await ids('asc');
    const stream = (await redis.xrange(keyspace.coordIngest, '-', '+')).map(([id]) => id);
    // Every valid entry of the stream, in stream order (the invalid one went to the dead-letter stream).
    expect(asc).toEqual(stream.filter((id) => asc.includes(id)));
    expect(asc).toHaveLength(30);
    expect(new Set(asc).size).toBe(30);
    expect(await ids('desc')).toEqual([...asc].reverse());
    expect((await archivist.get<EventsBody>('/v1/events')).body.events).toHaveLength(40);
  });

  it('bounds the page size: default 100, at most 1000', async () => {
    expect((await archivist.get<EventsBody>('/v1/events?limit=1000')).status).toBe(200);
    const res = await archivist.get<{ message: string[] }>('/v1/events?limit=1001');
    expect(res.status).toBe(400);
    expect(res.body.message).toContain('limit must not be greater than 1000');
  });

  it.each([
    ['limit=0', 'limit must not be less than 1'],
    ['limit=ten', 'limit must be a decimal integer'],
    ['limit=0x10', 'limit must be a decimal integer'],
    ['limit=1e2', 'limit must be a decimal integer'],
    ['limit=%2010', 'limit must be a decimal integer'],
    ['since=yesterday', 'since must be an RFC 3339 time (2026-06-01T10:00:00Z), epoch milliseconds'],
    ['until=2x', 'until must be an RFC 3339 time'],
    ['since=1700000000', 'since must be an RFC 3339 time'],
    ['since=2026-02-30T00:00:00Z', 'or a duration back from now (90s, 15m, 2h, 7d, 1w)'],
    ['stream=logs', 'stream must be a comma-separated list of'],
    ['level=loud', 'level must be one of the following values'],
    ['sesion=x', 'property sesion should not exist'],
    ['until_id=abc', 'until_id must be a stream entry id'],
    ['cursor=garbage', 'cursor is not one this API returned'],
    ['since=2026-06-02T00:00:00Z&until=2026-06-01T00:00:00Z', 'since must not be after until'],
    ['kind=a&op=b', 'give kind or op, not both'],
  ])('answers 400 with the reason for %s', async (query, reason) => {
    const res = await archivist.get<{ message: string | string[] }>(`/v1/events?${query}`);
    expect(res.status).toBe(400);
    expect([res.body.message].flat().join('; ')).toContain(reason);
  });

  it('refuses a cursor made for the other order', async () => {
    const first = await archivist.get<EventsBody>('/v1/events?limit=1&order=desc');
    const res = await archivist.get<{ message: string }>(
      `/v1/events?cursor=${encodeURIComponent(first.body.next_cursor!)}`,
    );
    expect(res.status).toBe(400);
    expect(res.body.message).toContain('cursor was made for order=desc');
  });

  it('archives invalid entries as dead letters, with the original fields and the reason', async () => {
    const { body } = await archivist.get<EventsBody>('/v1/events?stream=coordIngest:dead');
    expect(body.events).toHaveLength(1);
    const dead = body.events[0];
    expect(dead).toMatchObject({
      stream: 'coordIngest:dead',
      type: 'dead-letter',
      kind: 'Invalid',
      session: 'bad',
      source: keyspace.coordIngest,
    });
    expect(dead.data).toMatchObject({
      group: 'archivist',
      error_code: 'Invalid',
      source_stream: keyspace.coordIngest,
    });
    expect(String(dead.data.reason)).toContain('level');
    expect(JSON.parse((dead.data.fields as Record<string, string>).data).level).toBe('loud');
    // The live stream's dead-letter stream holds it too: nothing was lost.
    expect(await redis.xlen(keyspace.deadLetter(keyspace.coordIngest))).toBe(1);
    expect(await count('stream=coordEvents:dead')).toBe(1);
    expect(await count('session=bad')).toBe(1);
  });

  it('lists sessions with first/last seen and how they ended', async () => {
    const { status, body } = await archivist.get<{ sessions: Array<Record<string, unknown>> }>(
      '/v1/sessions',
    );
    expect(status).toBe(200);
    expect(body.sessions).toEqual([
      {
        session: 'alive',
        state: 'active',
        first_seen: '2026-06-01T11:00:00.000Z',
        last_seen: '2026-06-01T11:00:30.000Z',
        events: 2,
        registered_at: '2026-06-01T11:00:00.000Z',
        ended_at: null,
        end_reason: null,
        role: 'dev',
        task: 'T-1',
      },
      {
        session: 'culled',
        state: 'ended',
        first_seen: '2026-06-01T11:00:01.000Z',
        last_seen: '2026-06-01T11:00:20.000Z',
        events: 2,
        registered_at: '2026-06-01T11:00:01.000Z',
        ended_at: '2026-06-01T11:00:20.000Z',
        end_reason: 'ttl-expired',
        role: 'qa',
        task: 'T-2',
      },
    ]);
    const ended = await archivist.get<{ sessions: Array<{ session: string }> }>('/v1/sessions?state=ended');
    expect(ended.body.sessions.map((s) => s.session)).toEqual(['culled']);
    expect((await archivist.get('/v1/sessions?state=zombie')).status).toBe(400);
  });

  it('lists telemetry episodes only (stall and degraded by default), never the breaches', async () => {
    const { body } = await archivist.get<{ episodes: Array<Record<string, unknown>> }>(
      '/v1/telemetry/episodes',
    );
    expect(body.episodes.map((e) => [e.event, e.status, e.duration_ms])).toEqual([
      ['overhead.episode', 'degraded', 300],
      ['overhead.episode', 'stall', 400],
    ]);
    expect(body.episodes[0]).toMatchObject({ source: 'headroom', detail: { kind: 'episode', n: 2 } });
    const byEvent = await archivist.get<{ episodes: unknown[] }>('/v1/telemetry/episodes?event=overhead');
    expect(byEvent.body.episodes).toHaveLength(2);
    const ok = await archivist.get<{ episodes: unknown[] }>('/v1/telemetry/episodes?status=ok');
    expect(ok.body.episodes).toEqual([]);
    expect((await archivist.get('/v1/telemetry/episodes?status=fine')).status).toBe(400);
  });

  it('exports row counts and the database size in /metrics', async () => {
    const text = await (await fetch(`${archivist.url}/metrics`)).text();
    expect(text).toMatch(/coordbus_archive_rows\{stream="coordIngest"[^}]*\} 30/);
    expect(text).toMatch(/coordbus_archive_rows\{stream="coordIngest:dead"[^}]*\} 1/);
    const size = /coordbus_archive_db_size_bytes\{[^}]*\} (\d+)/.exec(text);
    expect(Number(size?.[1])).toBeGreaterThan(0);
  });
});

describe('telemetry-archivist API door (built service)', () => {
  const READ = 'read-token-for-the-door-test-0123';
  const OP = 'operator-token-for-the-door-test-0123';
  let keyspace: Keyspace;
  let redis: Redis;
  const started: Archivist[] = [];

  beforeAll(() => {
    keyspace = testKeyspace('arch-door');
    redis = new Redis(testRedisUrl());
  });

  afterAll(async () => {
    for (const a of started) {
      await a.stop();
      removeDir(a.dataDir);
    }
    await cleanupNamespace(redis, keyspace);
    redis.disconnect();
  });

  async function start(env: NodeJS.ProcessEnv): Promise<Archivist> {
    const a = await startArchivist(keyspace, testRedisUrl(), env);
    started.push(a);
    return a;
  }

  const status = async (url: string, headers: Record<string, string> = {}) =>
    (await fetch(url, { headers })).status;

  it('binds 127.0.0.1 by default', async () => {
    const a = await start({ HTTP_HOST: '' });
    expect(new URL(a.url).hostname).toBe('127.0.0.1');
    const line = a.proc.lines.find((l) => l.includes('API access'));
    expect(line).toContain('open (loopback)');
  });

  it('on a non-loopback listener without a token refuses /v1 (naming the variable) and keeps health open', async () => {
    const a = await start({ HTTP_HOST: '0.0.0.0' });
    const res = await fetch(`${a.url}/v1/events`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { message: string }).message).toContain('COORDBUS_API_TOKEN');
    for (const path of ['/healthz', '/readyz', '/metrics']) expect(await status(`${a.url}${path}`)).toBe(200);
  });

  it('with a token requires it for /v1 (constant-time compare, never logged), health stays open', async () => {
    const a = await start({ HTTP_HOST: '0.0.0.0', COORDBUS_API_TOKEN: READ, COORDBUS_OPERATOR_TOKEN: OP });
    expect(await status(`${a.url}/v1/events`)).toBe(401);
    expect(await status(`${a.url}/v1/sessions`, { authorization: `Bearer ${READ}x` })).toBe(401);
    expect(await status(`${a.url}/v1/events`, { authorization: `Bearer ${READ}` })).toBe(200);
    expect(await status(`${a.url}/v1/telemetry/episodes`, { authorization: `Bearer ${OP}` })).toBe(200);
    expect(await status(`${a.url}/v1/events?limit=0x10`, { authorization: `Bearer ${READ}` })).toBe(400);
    // The index takes the same token, at /v1 and at / for JSON clients; the page shell stays open.
    const json = { accept: 'application/json' };
    expect(await status(`${a.url}/v1`)).toBe(401);
    expect(await status(`${a.url}/v1/`, json)).toBe(401);
    expect(await status(`${a.url}/`, json)).toBe(401);
    expect(await status(`${a.url}/v1`, { authorization: `Bearer ${READ}` })).toBe(200);
    expect(await status(`${a.url}/`, { ...json, authorization: `Bearer ${READ}` })).toBe(200);
    expect(await status(`${a.url}/`, { accept: 'text/html' })).toBe(200);
    for (const path of ['/healthz', '/readyz', '/metrics']) expect(await status(`${a.url}${path}`)).toBe(200);
    const logs = a.proc.lines.join('\n');
    expect(logs).not.toContain(READ);
    expect(logs).not.toContain(OP);
  });

  it('reads the token from a file (COORDBUS_API_TOKEN_FILE)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'door-'));
    const file = join(dir, 'token');
    writeFileSync(file, `${READ}\n`, { mode: 0o600 });
    const a = await start({ COORDBUS_API_TOKEN_FILE: file });
    expect(await status(`${a.url}/v1/events`)).toBe(401);
    expect(await status(`${a.url}/v1/events`, { authorization: `Bearer ${READ}` })).toBe(200);
    removeDir(dir);
  });
});

describe('telemetry-archivist start-up and retention (built service)', () => {
  it('exits 2 naming every bad variable', async () => {
    const { code, output } = await runServiceToExit('telemetry-archivist', {
      REDIS_URL: testRedisUrl(),
      ARCHIVIST_RETENTION: 'logs=1d',
      DATABASE_URL: 'mysql://db',
      ARCHIVIST_VALIDATE: 'false',
    });
    expect(code).toBe(2);
    expect(output).toContain('ARCHIVIST_RETENTION');
    expect(output).toContain('DATABASE_URL');
    expect(output).toContain('ARCHIVIST_VALIDATE was removed');
  });

  it('refuses a database whose schema is newer than the code, saying so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'archivist-data-'));
    try {
      mkdirSync(dir, { recursive: true });
      const db = new Database(join(dir, 'archive.sqlite'));
      db.exec(
        'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_ms INTEGER NOT NULL)',
      );
      db.exec("INSERT INTO schema_migrations VALUES (999, 'future', 0)");
      db.close();
      const { code, output } = await runServiceToExit('telemetry-archivist', {
        REDIS_URL: testRedisUrl(),
        COORDBUS_NAMESPACE: testKeyspace('arch-new').namespace,
        ARCHIVIST_DATA_DIR: dir,
        HTTP_PORT: '0',
      });
      expect(code).not.toBe(0);
      expect(output).toContain(
        `schema version 999, newer than the ${LATEST_SCHEMA_VERSION} this telemetry-archivist supports`,
      );
    } finally {
      removeDir(dir);
    }
  });

  it('applies retention per stream periodically', async () => {
    const keyspace = testKeyspace('arch-ret');
    const redis = new Redis(testRedisUrl());
    const archivist = await startArchivist(keyspace, testRedisUrl(), {
      ARCHIVIST_RETENTION: 'coordIngest=/5',
      ARCHIVIST_RETENTION_INTERVAL: '200ms',
    });
    try {
      for (let i = 0; i < 20; i++) await xadd(redis, keyspace.coordIngest, Schemas.coordOp, coordOp(i));
      for (let i = 0; i < 3; i++)
        await xadd(redis, keyspace.jobEvents, Schemas.jobEvent, {
          job_id: `j${i}`,
          invocation_id: 'inv',
          hook: 'h',
          name: 'n',
          worktree: null,
          tags: [],
          status: 'succeeded',
          exit_code: 0,
          signal: null,
          host: 'h',
          ts: new Date().toISOString(),
        });
      await waitForCount(archivist, 'stream=jobEvents', 3);
      // Retention keeps the newest 5 coord ops and leaves the job events alone.
      await waitFor(
        async () => (await countEvents(archivist, 'stream=coordIngest')) === 5,
        'retention to keep 5 coord ops',
        15_000,
        100,
      );
      const { body } = await archivist.get<EventsBody>('/v1/events?stream=coordIngest');
      expect(body.events.map((e) => e.data.msg)).toEqual(['op 15', 'op 16', 'op 17', 'op 18', 'op 19']);
      expect(await countEvents(archivist, 'stream=jobEvents')).toBe(3);
      const text = await (await fetch(`${archivist.url}/metrics`)).text();
      expect(text).toMatch(/coordbus_archive_retention_deleted_total\{stream="coordIngest"[^}]*\} 15/);
    } finally {
      await archivist.stop();
      removeDir(archivist.dataDir);
      await cleanupNamespace(redis, keyspace);
      redis.disconnect();
    }
  });

  it('archives into PostgreSQL when DATABASE_URL is set (own schema, created on start)', async () => {
    const keyspace = testKeyspace('arch-pg');
    const redis = new Redis(testRedisUrl());
    const schema = `archivist_svc_${newUlid().toLowerCase()}`;
    const archivist = await startArchivist(keyspace, testRedisUrl(), {
      DATABASE_URL: PG_URL,
      ARCHIVIST_PG_SCHEMA: schema,
    });
    try {
      for (let i = 0; i < 5; i++) await xadd(redis, keyspace.coordIngest, Schemas.coordOp, coordOp(i));
      await waitForCount(archivist, 'stream=coordIngest', 5);
      const pg = new Client(pgConnectionConfig(PG_URL));
      await pg.connect();
      try {
        const { rows } = await pg.query(`SELECT COUNT(*)::int AS n FROM "${schema}".events`);
        expect(rows[0].n).toBe(5);
      } finally {
        await pg.end();
      }
      const text = await (await fetch(`${archivist.url}/metrics`)).text();
      expect(text).toMatch(/coordbus_archive_batch_seconds_count\{[^}]*store="postgres"[^}]*\} \d+/);
    } finally {
      await archivist.stop();
      removeDir(archivist.dataDir);
      await cleanupNamespace(redis, keyspace);
      redis.disconnect();
      const pg = new Client(pgConnectionConfig(PG_URL));
      await pg.connect();
      await pg.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pg.end();
    }
  });
});
