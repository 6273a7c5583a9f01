import { existsSync } from 'node:fs';
import { CoordEvent, EnvelopeCodec, Schemas, ULID_PATTERN, UnavailableError } from '@coordbus/envelope';
import { FsPollSource, FsPollSourceOptions } from '@coordbus/event-source';
import { SyntheticCoordRoot } from './coord-root';

/** Polls and commits, like a consumer that handled everything. */
async function tick(source: FsPollSource): Promise<CoordEvent[]> {
  const events = await source.poll();
  await source.commit(events);
  return events;
}

const codec = new EnvelopeCodec();

describe('FsPollSource', () => {
  let root: SyntheticCoordRoot;
  let source: FsPollSource;
  const make = (options: Partial<FsPollSourceOptions> = {}) =>
    new FsPollSource({ root: root.root, ...options });

  beforeEach(() => {
    root = new SyntheticCoordRoot();
    source = make();
  });
  afterEach(() => root.dispose());

  function expectValid(events: CoordEvent[]): void {
    for (const e of events) {
      expect(() => codec.validate(Schemas.coordEvent, e)).not.toThrow();
      expect(e.tx_id).toMatch(ULID_PATTERN);
      expect(e.source).toBe('fs-poll');
      expect(e.ingress_ts).toBeNull();
    }
  }

  describe('one event per TxKind from a synthetic coord root', () => {
    it('session.register when sessions/<id>.json appears', async () => {
      expect(await tick(source)).toEqual([]);
      root.session('alpha', {
        role: 'reviewer',
        task: 'TOD-481',
        blob: { pr: 7 },
        registered_at: '2026-04-07T21:13:45.123Z',
        last_heartbeat: '2026-04-07T21:13:45.123Z',
      });
      const events = await tick(source);
      expectValid(events);
      expect(events).toEqual([
        expect.objectContaining({
          tx_kind: 'session.register',
          session_id: 'alpha',
          resource: null,
          ts: '2026-04-07T21:13:45.123Z',
          payload: expect.objectContaining({ role: 'reviewer', task: 'TOD-481', blob: { pr: 7 } }),
        }),
      ]);
    });

    it('session.heartbeat when last_heartbeat changes (with the phase)', async () => {
      root.session('alpha', {
        registered_at: '2026-04-07T21:00:00.000Z',
        last_heartbeat: '2026-04-07T21:00:00.000Z',
      });
      await tick(source);
      root.session('alpha', {
        registered_at: '2026-04-07T21:00:00.000Z',
        last_heartbeat: '2026-04-07T21:00:05.000Z',
        phase: 'testing',
      });
      const events = await tick(source);
      expectValid(events);
      expect(events).toEqual([
        expect.objectContaining({
          tx_kind: 'session.heartbeat',
          session_id: 'alpha',
          ts: '2026-04-07T21:00:05.000Z',
          payload: expect.objectContaining({ last_heartbeat: '2026-04-07T21:00:05.000Z', phase: 'testing' }),
        }),
      ]);
      expect(await tick(source)).toEqual([]); // only on change
    });

    it('session.dereg when the file goes: explicit while fresh, ttl-expired when stale', async () => {
      const stale = new Date(Date.now() - 10 * 60_000).toISOString();
      root.session('fresh');
      root.session('stale', { registered_at: stale, last_heartbeat: stale });
      await tick(source);
      root.remove('sessions/fresh.json');
      root.remove('sessions/stale.json');
      const events = await tick(source);
      expectValid(events);
      expect(
        events.map((e) => [e.tx_kind, e.session_id, (e.payload as { reason: string }).reason]).sort(),
      ).toEqual([
        ['session.dereg', 'fresh', 'explicit'],
        ['session.dereg', 'stale', 'ttl-expired'],
      ]);
    });

    it('lock.acquire when locks/<resource>/record.json appears (resource names decoded)', async () => {
      root.session('alpha');
      await tick(source);
      root.lock('db%2Fmain', 'alpha', {
        acquired_at: '2026-04-07T21:01:00.000Z',
        expires_at: '2099-01-01T00:00:00.000Z',
        reason: 'migrating',
      });
      const events = await tick(source);
      expectValid(events);
      expect(events).toEqual([
        expect.objectContaining({
          tx_kind: 'lock.acquire',
          session_id: 'alpha',
          resource: 'db/main',
          ts: '2026-04-07T21:01:00.000Z',
          payload: {
            resource: 'db/main',
            owner_session: 'alpha',
            expires_at: '2099-01-01T00:00:00.000Z',
            reason: 'migrating',
          },
        }),
      ]);
    });

    it('lock.release when the record goes (unlock) or the owner changes (stolen, then acquire)', async () => {
      root.lock('repo', 'alpha');
      root.lock('docs', 'alpha');
      await tick(source);
      root.remove('locks/repo');
      root.lock('docs', 'beta');
      const events = await tick(source);
      expectValid(events);
      const summary = events.map((e) => [
        e.tx_kind,
        e.resource,
        e.session_id,
        (e.payload as { reason?: string }).reason ?? null,
      ]);
      expect(summary).toEqual([
        ['lock.release', 'docs', 'alpha', 'stolen'],
        ['lock.release', 'repo', 'alpha', 'unlock'],
        ['lock.acquire', 'docs', 'beta', null],
      ]);
    });

    it('inbox.deliver for a new message file: the envelope only, never the body', async () => {
      await tick(source);
      root.message('alpha', '01JABCDEF0MSG0000000000001', {
        kind: 'review',
        from_session: 'beta',
        subject: 'PR 7',
      });
      const events = await tick(source);
      expectValid(events);
      expect(events).toEqual([
        expect.objectContaining({
          tx_kind: 'inbox.deliver',
          session_id: 'alpha',
          payload: {
            to_session: 'alpha',
            msg_id: '01JABCDEF0MSG0000000000001',
            kind: 'review',
            from_session: 'beta',
            subject: 'PR 7',
          },
        }),
      ]);
      expect(JSON.stringify(events)).not.toContain('SECRET BODY');
      root.remove('messages/inbox-alpha/01JABCDEF0MSG0000000000001.json'); // drained: not an event
      expect(await tick(source)).toEqual([]);
    });

    it('dispatch.issue for a new dispatch-orders/<order_id>.json', async () => {
      await tick(source);
      root.order('ord-1', 'alpha', 'TOD-481');
      const events = await tick(source);
      expectValid(events);
      expect(events).toEqual([
        expect.objectContaining({
          tx_kind: 'dispatch.issue',
          session_id: 'alpha',
          payload: { order_id: 'ord-1', assignee: 'alpha', ticket: 'TOD-481' },
        }),
      ]);
      expect(await tick(source)).toEqual([]);
    });
  });

  it('skips half-written and malformed files, counts them, and picks them up once whole', async () => {
    const seen: string[] = [];
    source = make({ onMalformed: (path) => seen.push(path) });
    root.write('sessions/torn.json', '{"session_id":"torn","last_heart');
    root.write('locks/x/record.json', '{"owner_pid": 1}');
    root.write('dispatch-orders/o.json', '[]');
    root.write('sessions/.tmp-write.json', 'garbage'); // a writer's temp file: ignored, not counted
    expect(await tick(source)).toEqual([]);
    expect(source.stats.malformed).toBe(3);
    expect(seen).toHaveLength(3);
    root.session('torn');
    const events = await tick(source);
    expect(events.map((e) => e.tx_kind)).toEqual(['session.register']);
  });

  it('a previously good file turning malformed is not a removal', async () => {
    root.session('alpha');
    await tick(source);
    root.write('sessions/alpha.json', '{"sess');
    expect(await tick(source)).toEqual([]);
    expect(source.stats.malformed).toBe(1);
  });

  it('treats removed directories as empty state and keeps going', async () => {
    root.session('a');
    root.lock('r', 'a');
    root.message('a', 'm1');
    await tick(source);
    root.remove('sessions');
    root.remove('locks');
    root.remove('messages');
    const events = await tick(source);
    expect(events.map((e) => e.tx_kind)).toEqual(['lock.release', 'session.dereg']);
    root.session('b');
    expect((await tick(source)).map((e) => e.session_id)).toEqual(['b']);
  });

  it('rejects with UnavailableError when the coord root itself is unreadable, and recovers', async () => {
    root.remove('');
    await expect(source.poll()).rejects.toBeInstanceOf(UnavailableError);
    root.session('back'); // recreates the root
    expect((await tick(source)).map((e) => e.tx_kind)).toEqual(['session.register']);
  });

  it('is cancel-safe: events of a poll that was not committed come back on the next poll', async () => {
    root.session('a');
    root.session('b');
    const first = await source.poll(); // result "dropped": never committed
    expect(first).toHaveLength(2);
    const again = await source.poll();
    expect(again).toEqual(first);
    await source.commit(again);
    expect(await source.poll()).toEqual([]);
  });

  it('shares one scan between concurrent polls', async () => {
    root.session('a');
    const [x, y] = await Promise.all([source.poll(), source.poll()]);
    expect(x).toEqual(y);
    expect(source.stats.scans).toBe(1);
  });

  it('bounds a poll by maxBatch and keeps the rest as backlog', async () => {
    source = make({ maxBatch: 3 });
    for (let i = 0; i < 7; i++) root.session(`s${i}`);
    const sizes: number[] = [];
    for (;;) {
      const batch = await tick(source);
      if (!batch.length) break;
      sizes.push(batch.length);
    }
    expect(sizes).toEqual([3, 3, 1]);
  });

  it('re-emits the same (source, tx_id) after a restart, so consumers dedup the replay', async () => {
    root.session('a');
    root.lock('r', 'a');
    root.order('o1', 'a', 'T-1');
    const before = await tick(source);
    const restarted = make();
    const after = await tick(restarted);
    expect(after.map((e) => e.tx_id).sort()).toEqual(before.map((e) => e.tx_id).sort());
  });

  it('with a state file, a restart still reports what was removed while it was down', async () => {
    const statePath = root.path('..', `${root.root.split('/').pop()}-state.json`);
    source = make({ statePath });
    root.session('a');
    root.session('b');
    await tick(source);
    expect(existsSync(statePath)).toBe(true);
    root.remove('sessions/a.json'); // while the sentinel is down
    const restarted = make({ statePath });
    const events = await tick(restarted);
    expect(events.map((e) => [e.tx_kind, e.session_id])).toEqual([['session.dereg', 'a']]);
    root.remove(statePath);
  });
});
