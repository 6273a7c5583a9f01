import { Keyspace } from '@coordbus/envelope';
import { ArchiveRow, ArchiveRowError, ArchiveStore, KEY_MAX_BYTES } from '../src/store/archive-store';
import { ArchiveSchemaTooNewError, LATEST_SCHEMA_VERSION } from '../src/store/migrations';
import { StreamRef, archivedStreamRefs, contentFromFields, toArchiveRow } from '../src/ingest/row-mapper';
import { ArchiveQueryService } from '../src/query/archive-query.service';

/** A fresh, empty store per test (and what to undo afterwards). */
export interface StoreHarness {
  create(): Promise<ArchiveStore>;
  /** Records a migration `version` in the database directly (the store may be closed); null removes versions above the latest. */
  bumpSchemaVersion(version: number | null): Promise<void>;
  /** Turns the (closed) database back into a schema-1 archive: no text index, version 1 recorded. */
  downgradeToVersion1(): Promise<void>;
  cleanup(): Promise<void>;
}

const keyspace = new Keyspace('conf');
const refs = archivedStreamRefs(keyspace);
const ref = (key: string): StreamRef => refs.find((r) => r.key === key)!;

const T0 = Date.parse('2026-06-01T00:00:00.000Z');

export function coordOpRow(
  i: number,
  over: { session?: string; op?: string; level?: string; ts?: number } = {},
): ArchiveRow {
  const envelope = {
    v: 0,
    ts: new Date(over.ts ?? T0 + i * 1000).toISOString(),
    service: 'coord',
    host: 'h',
    level: over.level ?? 'info',
    pid: 1,
    target: 'coord',
    msg: `op ${i}`,
    fields: {
      op: over.op ?? 'lock',
      session: over.session ?? 's1',
      resource: `r${i % 3}`,
      peer: '',
      duration_ms: 1,
      phase: 'post',
      exit_code: 0,
    },
  };
  return toArchiveRow(
    ref('coordIngest'),
    `${T0 + i}-0`,
    contentFromFields({ type: 'coord-op', v: '0', data: JSON.stringify(envelope) }),
  );
}

function coordEventRow(
  entry: string,
  txId: string,
  kind: string,
  session: string,
  tsMs: number,
  payload: object,
): ArchiveRow {
  const ev = {
    tx_id: txId,
    tx_kind: kind,
    ts: new Date(tsMs).toISOString(),
    ingress_ts: null,
    source: 'coord',
    session_id: session,
    resource: null,
    payload,
  };
  return toArchiveRow(
    ref('coordEvents'),
    entry,
    contentFromFields({ type: 'coord-event', v: '1', data: JSON.stringify(ev) }),
  );
}

/** A telemetry event row as the log-tailer writes it (`kind` is `breach` or `episode`). */
function telemetryRow(
  i: number,
  event: string,
  status: string,
  over: { source?: string; kind?: string } = {},
): ArchiveRow {
  const ev = {
    source: over.source ?? 'headroom',
    event,
    status,
    duration_ms: 100 * i,
    detail: { kind: over.kind ?? (event.endsWith('.episode') ? 'episode' : 'breach'), n: i },
    ts: new Date(T0 + i * 1000).toISOString(),
  };
  return toArchiveRow(
    ref('telemetryEvents'),
    `${T0 + i}-0`,
    contentFromFields({ type: 'telemetry', v: '1', data: JSON.stringify(ev) }),
  );
}

/** The ArchiveStore contract: every adapter must pass all of it. */
export function describeArchiveStoreConformance(name: string, harness: () => StoreHarness): void {
  // Generous: the machine running the suite may be busy (shared CI box); nothing here waits on time.
  jest.setTimeout(30_000);
  describe(`ArchiveStore conformance: ${name}`, () => {
    let h: StoreHarness;
    let store: ArchiveStore;

    beforeEach(async () => {
      h = harness();
      store = await h.create();
    });

    afterEach(async () => {
      await store.close();
      await h.cleanup();
    });

    it('migrates a new database to the latest schema version', async () => {
      expect(await store.schemaVersion()).toBe(LATEST_SCHEMA_VERSION);
    });

    it('inserts a batch and skips rows it already holds (same stream and entry id)', async () => {
      const rows = Array.from({ length: 50 }, (_, i) => coordOpRow(i));
      expect(await store.insertBatch(rows)).toBe(50);
      // A redelivered batch overlapping the first one, plus a duplicate inside the batch itself.
      const again = [...rows.slice(40), coordOpRow(50), coordOpRow(51), coordOpRow(51)];
      expect(await store.insertBatch(again)).toBe(2);
      const all = await store.queryEvents({ limit: 1000 });
      expect(all).toHaveLength(52);
      expect(new Set(all.map((r) => r.entryId)).size).toBe(52);
      expect((await store.stats()).rowsByStream).toEqual({ [keyspace.coordIngest]: 52 });
    });

    it('keeps one row per (source, tx_id) of coord events even under different entry ids', async () => {
      const a = coordEventRow('100-0', '01J00000000000000000000001', 'lock.acquire', 's1', T0, {
        resource: 'x',
        owner_session: 's1',
      });
      const b = coordEventRow('200-0', '01J00000000000000000000001', 'lock.acquire', 's1', T0, {
        resource: 'x',
        owner_session: 's1',
      });
      expect(await store.insertBatch([a])).toBe(1);
      expect(await store.insertBatch([b])).toBe(0);
      // The same entry id on a different stream is a different row.
      const dead = { ...a, stream: keyspace.deadLetter(keyspace.coordEvents), naturalKey: null };
      expect(await store.insertBatch([dead])).toBe(1);
    });

    it('stores the entry verbatim and returns every column', async () => {
      const row = coordOpRow(7, { session: 'sess-7', op: 'unlock', level: 'warn' });
      await store.insertBatch([row]);
      const [got] = await store.queryEvents({ limit: 10 });
      // The search words are indexed, not returned.
      const { text, ...stored } = row;
      expect(text).toBe('unlock r1 op 7');
      expect(got).toMatchObject(stored);
      expect(typeof got.archivedMs).toBe('number');
      expect(JSON.parse(got.data).msg).toBe('op 7');
    });

    it('filters by stream, kind, session, resource, level, source and time', async () => {
      const rows = Array.from({ length: 30 }, (_, i) =>
        coordOpRow(i, {
          session: i % 2 ? 'odd' : 'even',
          op: i % 3 ? 'lock' : 'msg',
          level: i === 5 ? 'error' : 'info',
        }),
      );
      rows.push(
        coordEventRow('1-1', '01J00000000000000000000009', 'session.register', 'odd', T0, {
          role: 'r',
          task: 't',
          blob: null,
        }),
      );
      await store.insertBatch(rows);
      const count = async (f: object) => (await store.queryEvents({ limit: 1000, ...f })).length;
      expect(await count({ streams: [keyspace.coordIngest] })).toBe(30);
      expect(await count({ streams: [keyspace.coordEvents] })).toBe(1);
      expect(await count({ streams: [keyspace.coordIngest, keyspace.coordEvents] })).toBe(31);
      expect(await count({ kinds: ['msg'] })).toBe(10);
      expect(await count({ kinds: ['msg', 'session.register'] })).toBe(11);
      expect(await count({ sessions: ['odd'] })).toBe(16);
      expect(await count({ resource: 'r1' })).toBe(10);
      expect(await count({ level: 'error' })).toBe(1);
      expect(await count({ source: 'coord' })).toBe(31);
      expect(
        await count({ sinceMs: T0 + 10_000, untilMs: T0 + 19_000, streams: [keyspace.coordIngest] }),
      ).toBe(10);
      expect(await count({ untilEntry: { ms: T0 + 9, seq: 0 }, streams: [keyspace.coordIngest] })).toBe(10);
    });

    it('serves /v1/telemetry/episodes from episodes only, whatever else the telemetry stream holds', async () => {
      await store.insertBatch([
        telemetryRow(1, 'headroom.overhead', 'stall'),
        telemetryRow(2, 'headroom.overhead.episode', 'stall'),
        telemetryRow(3, 'headroom.overhead', 'degraded'),
        telemetryRow(4, 'headroom.overhead', 'ok'),
        telemetryRow(5, 'headroom.overhead.episode', 'degraded'),
        telemetryRow(6, 'upstream.ttfb.episode', 'stall', { source: 'proxy' }),
        // Near misses a LIKE or a case-insensitive match would let through.
        telemetryRow(7, 'headroom.overhead.EPISODE', 'stall'),
        telemetryRow(8, 'headroom.overhead.episodes', 'stall'),
        telemetryRow(9, 'episode', 'stall'),
        telemetryRow(10, 'x_episode', 'stall'),
        coordOpRow(11, { op: 'lock.episode' }),
      ]);
      const api = new ArchiveQueryService(store, refs);
      const seen = async (q: object) =>
        (await api.episodes(q)).episodes.map((e) => [e.event, e.status, e.duration_ms]);
      expect(await seen({})).toEqual([
        ['headroom.overhead.episode', 'stall', 200],
        ['headroom.overhead.episode', 'degraded', 500],
        ['upstream.ttfb.episode', 'stall', 600],
      ]);
      expect(await seen({ event: 'headroom.overhead' })).toEqual(
        await seen({ event: 'headroom.overhead.episode' }),
      );
      expect(await seen({ event: 'headroom.overhead' })).toHaveLength(2);
      expect(await seen({ source: 'proxy' })).toEqual([['upstream.ttfb.episode', 'stall', 600]]);
      expect(await seen({ status: 'ok' })).toEqual([]);
      expect((await api.episodes({ order: 'desc', limit: 1 })).episodes[0].detail).toEqual({
        kind: 'episode',
        n: 6,
      });
      // The console's telemetry view keeps every stall and degraded event, breaches included.
      expect((await api.stallTelemetry({})).episodes).toHaveLength(9);
    });

    it('pages in entry order with a keyset position, both directions, without skipping or repeating', async () => {
      await store.insertBatch(Array.from({ length: 25 }, (_, i) => coordOpRow(i)));
      for (const order of ['asc', 'desc'] as const) {
        const seen: string[] = [];
        let after;
        for (;;) {
          const page = await store.queryEvents({ limit: 7, order, after });
          if (!page.length) break;
          seen.push(...page.map((r) => r.entryId));
          const last = page[page.length - 1];
          after = { entryMs: last.entryMs, entrySeq: last.entrySeq, stream: last.stream };
        }
        const expected = Array.from({ length: 25 }, (_, i) => `${T0 + i}-0`);
        expect(seen).toEqual(order === 'asc' ? expected : expected.reverse());
      }
    });

    it('orders entries with equal ms by seq, then stream', async () => {
      const a = { ...coordOpRow(0), entryId: `${T0}-10`, entrySeq: 10 };
      const b = { ...coordOpRow(0), entryId: `${T0}-9`, entrySeq: 9 };
      const c = {
        ...coordOpRow(0),
        stream: keyspace.deadLetter(keyspace.coordIngest),
        entryId: `${T0}-9`,
        entrySeq: 9,
      };
      await store.insertBatch([a, b, c]);
      const got = await store.queryEvents({ limit: 10 });
      // The dead-letter stream's name extends the source's, so it sorts after it.
      expect(got.map((r) => [r.stream, r.entryId])).toEqual([
        [b.stream, b.entryId],
        [c.stream, c.entryId],
        [a.stream, a.entryId],
      ]);
    });

    it('aggregates sessions from coord events: first/last seen, state and how they ended', async () => {
      await store.insertBatch([
        coordEventRow('1-0', '01J0000000000000000000000A', 'session.register', 'alive', T0, {
          role: 'dev',
          task: 'x',
          blob: null,
        }),
        coordEventRow('2-0', '01J0000000000000000000000B', 'session.heartbeat', 'alive', T0 + 5000, {
          last_heartbeat: new Date(T0 + 5000).toISOString(),
          phase: null,
        }),
        coordEventRow('3-0', '01J0000000000000000000000C', 'session.register', 'gone', T0 + 1000, {
          role: 'dev',
          task: 'y',
          blob: null,
        }),
        coordEventRow('4-0', '01J0000000000000000000000D', 'session.dereg', 'gone', T0 + 2000, {
          reason: 'ttl-expired',
        }),
        coordEventRow('5-0', '01J0000000000000000000000E', 'session.dereg', 'back', T0 + 1000, {
          reason: 'explicit',
        }),
        coordEventRow('6-0', '01J0000000000000000000000F', 'session.register', 'back', T0 + 3000, {
          role: 'dev',
          task: 'z',
          blob: null,
        }),
      ]);
      const all = await store.sessionAggregates({ stream: keyspace.coordEvents, limit: 10 });
      expect(all.map((a) => a.session)).toEqual(['alive', 'back', 'gone']);
      expect(all[0]).toEqual({
        session: 'alive',
        firstMs: T0,
        lastMs: T0 + 5000,
        events: 2,
        registeredMs: T0,
        deregisteredMs: null,
      });
      expect(all[2]).toMatchObject({ session: 'gone', registeredMs: T0 + 1000, deregisteredMs: T0 + 2000 });
      const ended = await store.sessionAggregates({
        stream: keyspace.coordEvents,
        state: 'ended',
        limit: 10,
      });
      expect(ended.map((a) => a.session)).toEqual(['gone']);
      const active = await store.sessionAggregates({
        stream: keyspace.coordEvents,
        state: 'active',
        limit: 10,
      });
      expect(active.map((a) => a.session)).toEqual(['alive', 'back']);
      const recent = await store.sessionAggregates({
        stream: keyspace.coordEvents,
        sinceMs: T0 + 2500,
        limit: 10,
      });
      expect(recent.map((a) => a.session)).toEqual(['alive', 'back']);
      expect(await store.sessionAggregates({ stream: keyspace.coordEvents, limit: 1 })).toHaveLength(1);
    });

    it('applies retention by age and by row count, per stream', async () => {
      const now = T0 + 100;
      await store.insertBatch(Array.from({ length: 100 }, (_, i) => coordOpRow(i)));
      const dead = Array.from({ length: 10 }, (_, i) => ({
        ...coordOpRow(i),
        stream: keyspace.deadLetter(keyspace.coordIngest),
      }));
      await store.insertBatch(dead);
      // Entries are at T0 + i ms: older than 40 ms before `now` means i < 60.
      expect(await store.applyRetention(keyspace.coordIngest, { maxAgeMs: 40 }, now)).toBe(60);
      expect(await store.applyRetention(keyspace.coordIngest, { maxRows: 15 }, now)).toBe(25);
      const left = await store.queryEvents({ streams: [keyspace.coordIngest], limit: 1000 });
      expect(left.map((r) => r.entryId)).toEqual(Array.from({ length: 15 }, (_, i) => `${T0 + 85 + i}-0`));
      expect(await store.applyRetention(keyspace.coordIngest, { maxRows: 15, maxAgeMs: 1e9 }, now)).toBe(0);
      // Another stream is untouched.
      expect((await store.stats()).rowsByStream[keyspace.deadLetter(keyspace.coordIngest)]).toBe(10);
    });

    it('deletes large retention backlogs in chunks', async () => {
      await store.insertBatch(Array.from({ length: 12_000 }, (_, i) => coordOpRow(i)));
      expect(await store.applyRetention(keyspace.coordIngest, { maxRows: 1 }, T0)).toBe(11_999);
      expect((await store.stats()).rowsByStream[keyspace.coordIngest]).toBe(1);
    });

    it('reports its size and row counts', async () => {
      await store.insertBatch(Array.from({ length: 10 }, (_, i) => coordOpRow(i)));
      const stats = await store.stats();
      expect(stats.sizeBytes).toBeGreaterThan(0);
      expect(stats.rowsByStream[keyspace.coordIngest]).toBe(10);
    });

    it('takes parameters literally (no SQL injection through filter values)', async () => {
      await store.insertBatch([coordOpRow(1, { session: "x' OR '1'='1" })]);
      expect(await store.queryEvents({ sessions: ["' OR '1'='1"], limit: 10 })).toHaveLength(0);
      expect(await store.queryEvents({ sessions: ["x' OR '1'='1"], limit: 10 })).toHaveLength(1);
    });

    describe('text search (the same words and results in every store)', () => {
      const dispatch = (entry: string, tx: string, ts: number, session: string, payload: object) =>
        coordEventRow(entry, tx, 'dispatch.issue', session, ts, payload);
      const fixture = () => [
        dispatch('1000-0', '01J00000000000000000000011', T0 + 1000, 'bob', {
          order_id: 'o-1',
          assignee: 'alice',
          ticket: 'TOD-42',
        }),
        coordEventRow('1001-0', '01J00000000000000000000012', 'dispatch.done', 'alice', T0 + 2000, {
          order_id: 'o-1',
          assignee: 'alice',
          note: 'Shipped in PR 17; café déjà vu',
        }),
        coordEventRow('1002-0', '01J00000000000000000000013', 'inbox.deliver', 'alice', T0 + 3000, {
          to_session: 'bob',
          msg_id: 'm-1',
          kind: 'message',
          subject: 'auth refactor ready',
        }),
        dispatch('1003-0', '01J00000000000000000000014', T0 + 4000, 'carol', {
          order_id: 'o-2',
          assignee: 'dave',
          ticket: 'TOD-420',
        }),
        ...Array.from({ length: 30 }, (_, i) => coordOpRow(i)),
      ];
      const ids = async (text: string, more: Partial<Parameters<ArchiveStore['queryEvents']>[0]> = {}) =>
        (await store.queryEvents({ text, order: 'desc', limit: 100, ...more })).map((r) => r.entryId);

      it('finds a ticket, a note, a subject and a resource by their words, newest first', async () => {
        await store.insertBatch(fixture());
        // `TOD-42` is the phrase tod 42; the last word is also a prefix, so TOD-420 matches too.
        expect(await ids('TOD-42')).toEqual(['1003-0', '1000-0']);
        expect(await ids('tod-42 alice')).toEqual(['1000-0']);
        expect(await ids('todo')).toEqual([]);
        expect(await ids('shipped pr')).toEqual(['1001-0']);
        expect(await ids('CAFÉ DÉJÀ')).toEqual(['1001-0']);
        // Every term must match, in any order; words of one term must be adjacent.
        expect(await ids('ready AUTH')).toEqual(['1002-0']);
        expect(await ids('auth-refactor')).toEqual(['1002-0']);
        expect(await ids('refactor-auth')).toEqual([]);
        // Sessions named in the payload are words (to whom a message went, who an order is for).
        expect(await ids('bob')).toEqual(['1002-0']);
        // Resources of ops: r1 is i % 3 == 1 (ten rows), newest first.
        const r1 = await ids('r1', { streams: [keyspace.coordIngest] });
        expect(r1).toEqual(
          Array.from({ length: 30 }, (_, i) => i)
            .filter((i) => i % 3 === 1)
            .reverse()
            .map((i) => `${T0 + i}-0`),
        );
        // A query without a word matches nothing (rather than everything).
        expect(await ids('-- / ..')).toEqual([]);
      });

      it('pages text results with the keyset position and combines them with other filters', async () => {
        await store.insertBatch(fixture());
        const first = await store.queryEvents({ text: 'lock', order: 'desc', limit: 12 });
        expect(first).toHaveLength(12);
        const last = first[first.length - 1];
        const rest = await store.queryEvents({
          text: 'lock',
          order: 'desc',
          limit: 100,
          after: { entryMs: last.entryMs, entrySeq: last.entrySeq, stream: last.stream },
        });
        expect([...first, ...rest].map((r) => r.entryId)).toEqual(
          Array.from({ length: 30 }, (_, i) => `${T0 + 29 - i}-0`),
        );
        expect(await ids('tod', { sessions: ['carol'] })).toEqual(['1003-0']);
        expect(await ids('tod', { sinceMs: T0 + 4000 })).toEqual(['1003-0']);
      });

      it('takes query text literally (no FTS or tsquery syntax, no SQL)', async () => {
        await store.insertBatch(fixture());
        for (const q of [
          '"',
          "'",
          'a" OR "b',
          "x' OR '1'='1",
          'NEAR(a b)',
          'tod:*',
          '!tod',
          '(tod',
          '*',
          'AND',
        ]) {
          await expect(ids(q)).resolves.toEqual(expect.any(Array));
        }
        expect(await ids('"TOD-42"')).toEqual(['1003-0', '1000-0']);
        expect(await ids('and')).toEqual([]);
      });

      it('indexes each row once: a redelivered batch adds no second match; retention removes the words', async () => {
        await store.insertBatch(fixture());
        await store.insertBatch(fixture());
        expect(await ids('tod 42')).toEqual(['1003-0', '1000-0']);
        expect(await store.applyRetention(keyspace.coordEvents, { maxRows: 1 }, T0)).toBe(3);
        expect(await ids('tod')).toEqual(['1003-0']);
        expect(await ids('shipped')).toEqual([]);
        // A new row after the deletion is found by its own words only.
        await store.insertBatch([
          dispatch('2000-0', '01J00000000000000000000021', T0 + 5000, 'erin', {
            order_id: 'o-3',
            assignee: 'x',
            ticket: 'NEW-1',
          }),
        ]);
        expect(await ids('new')).toEqual(['2000-0']);
        expect(await ids('shipped')).toEqual([]);
      });

      it('an archive of schema 1 gets the words of the rows it already holds when opened', async () => {
        await store.insertBatch(fixture());
        await store.close();
        await h.downgradeToVersion1();
        store = await h.create();
        expect(await store.schemaVersion()).toBe(LATEST_SCHEMA_VERSION);
        expect(await ids('TOD-42')).toEqual(['1003-0', '1000-0']);
        expect(await ids('auth refactor')).toEqual(['1002-0']);
        // And keeps indexing what comes next.
        await store.insertBatch([
          dispatch('2000-0', '01J00000000000000000000021', T0 + 5000, 'erin', {
            order_id: 'o-3',
            assignee: 'x',
            ticket: 'TOD-4200',
          }),
        ]);
        expect(await ids('TOD-42')).toEqual(['2000-0', '1003-0', '1000-0']);
      });
    });

    describe('values one store cannot hold natively are normalised the same in both', () => {
      const readBack = async (entryId: string) =>
        (await store.queryEvents({ limit: 1000 })).find((r) => r.entryId === entryId)!;

      it('NUL in filter columns becomes U+FFFD; NUL in data becomes the JSON escape (same value)', async () => {
        const row = coordOpRow(1, { session: 'a\u0000b', op: 'lo\u0000ck' });
        // Raw data as a producer could write it: a raw NUL inside a JSON string.
        const raw = { ...coordOpRow(2), data: '{"msg":"x\u0000y"}', resource: 'r\u0000' };
        expect(await store.insertBatch([row, raw])).toBe(2);
        const got = await readBack(row.entryId);
        expect(got.session).toBe('a\uFFFDb');
        expect(got.kind).toBe('lo\uFFFDck');
        expect(JSON.parse(got.data).fields.session).toBe('a\u0000b'); // the data keeps the exact value
        expect(await store.queryEvents({ sessions: ['a\uFFFDb'], limit: 10 })).toHaveLength(1);
        const gotRaw = await readBack(raw.entryId);
        expect(gotRaw.data).toBe('{"msg":"x\\u0000y"}');
        expect(JSON.parse(gotRaw.data).msg).toBe('x\u0000y');
        expect(gotRaw.resource).toBe('r\uFFFD');
      });

      it('lone UTF-16 surrogates become U+FFFD (paired ones are kept)', async () => {
        const row = { ...coordOpRow(3, { session: 'x\ud800y\udc00z' }), data: '{"m":"\ud83d\ude00 \udfff"}' };
        await store.insertBatch([row]);
        const got = await readBack(row.entryId);
        expect(got.session).toBe('x\uFFFDy\uFFFDz');
        expect(got.data).toBe('{"m":"\ud83d\ude00 \uFFFD"}');
      });

      it('over-long keys keep a prefix and a digest: distinct values stay distinct, equal ones dedup', async () => {
        const long = 's'.repeat(5000);
        const a = coordOpRow(4, { session: `${long}-a` });
        const b = coordOpRow(5, { session: `${long}-b` });
        const nk = (row: ArchiveRow, key: string): ArchiveRow => ({ ...row, naturalKey: key });
        const ev1 = nk(coordOpRow(6), `${long}é1`);
        const ev2 = nk(coordOpRow(7), `${long}é2`);
        const ev1again = nk(coordOpRow(8), `${long}é1`); // another entry id, the same natural key
        expect(await store.insertBatch([a, b, ev1, ev2, ev1again])).toBe(4);
        const sa = (await readBack(a.entryId)).session!;
        const sb = (await readBack(b.entryId)).session!;
        expect(sa).not.toBe(sb);
        expect(Buffer.byteLength(sa)).toBeLessThanOrEqual(KEY_MAX_BYTES);
        expect(sa.startsWith('sss')).toBe(true);
        expect(sa).toMatch(/…sha256:[0-9a-f]{16}$/);
        expect(JSON.parse((await readBack(a.entryId)).data).fields.session).toBe(`${long}-a`);
        expect(await store.queryEvents({ sessions: [sa], limit: 10 })).toHaveLength(1);
        // A multi-byte character at the cut is never split into garbage.
        const multi = coordOpRow(9, { session: 'é'.repeat(3000) });
        await store.insertBatch([multi]);
        expect((await readBack(multi.entryId)).session).toMatch(/^é+…sha256:/);
      });

      it('a row no store can hold exactly is refused with the reason and its position; the batch writes nothing', async () => {
        const bad = { ...coordOpRow(11), entryId: '18446744073709551615-0', entryMs: 2 ** 64 };
        const err = await store.insertBatch([coordOpRow(10), bad, coordOpRow(12)]).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ArchiveRowError);
        expect((err as ArchiveRowError).index).toBe(1);
        expect((err as Error).message).toContain('18446744073709551615-0');
        expect((err as ArchiveRowError).retryable).toBe(false);
        expect(await store.queryEvents({ limit: 10 })).toHaveLength(0);
      });
    });

    it('reopens an existing database without re-migrating or losing rows', async () => {
      await store.insertBatch([coordOpRow(1)]);
      await store.close();
      store = await h.create();
      expect(await store.schemaVersion()).toBe(LATEST_SCHEMA_VERSION);
      expect(await store.queryEvents({ limit: 10 })).toHaveLength(1);
    });

    it('refuses to open a database whose schema is newer than the code', async () => {
      await store.close();
      await h.bumpSchemaVersion(LATEST_SCHEMA_VERSION + 1);
      const err = await h.create().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ArchiveSchemaTooNewError);
      expect((err as Error).message).toMatch(
        new RegExp(`schema version ${LATEST_SCHEMA_VERSION + 1}, newer than the ${LATEST_SCHEMA_VERSION}`),
      );
      // The harness still needs an open store to close in afterEach.
      await h.bumpSchemaVersion(null);
      store = await h.create();
    });
  });
}
