import { CoordEvent, EnvelopeCodec, newUlid, Schemas } from '@coordbus/envelope';
import { summarize, toObservation } from './summary';

const codec = new EnvelopeCodec();
const ev = (kind: CoordEvent['tx_kind'], payload: object, extra: Partial<CoordEvent> = {}): CoordEvent =>
  ({
    tx_id: newUlid(),
    tx_kind: kind,
    ts: '2026-04-07T21:13:45.123Z',
    ingress_ts: null,
    source: 'coord',
    session_id: 'alpha',
    resource: null,
    payload,
    ...extra,
  }) as CoordEvent;

describe('observation summaries', () => {
  it.each([
    [
      ev('session.register', { role: 'worker', task: 'TOD-481', blob: { big: 'x'.repeat(50) } }),
      'session alpha registered (role worker, task TOD-481)',
    ],
    [ev('session.register', { role: '', task: '', blob: null }), 'session alpha registered (role -, task -)'],
    [
      ev('session.heartbeat', { last_heartbeat: '2026-04-07T21:13:45.123Z', phase: 'build' }),
      'session alpha heartbeat (phase build)',
    ],
    [
      ev('session.heartbeat', { last_heartbeat: '2026-04-07T21:13:45.123Z', phase: null }),
      'session alpha heartbeat (phase -)',
    ],
    [ev('session.dereg', { reason: 'ttl-expired' }), 'session alpha deregistered (ttl-expired)'],
    [
      ev(
        'lock.acquire',
        { resource: 'db/main', owner_session: 'alpha', reason: 'migrate' },
        { resource: 'db/main' },
      ),
      'alpha acquired lock db/main (migrate)',
    ],
    [
      ev(
        'lock.release',
        { resource: 'repo', owner_session: 'alpha', reason: 'owner-evicted' },
        { resource: 'repo' },
      ),
      'alpha released lock repo (owner-evicted)',
    ],
    [
      ev('inbox.deliver', {
        to_session: 'alpha',
        msg_id: 'm1',
        kind: 'review',
        from_session: 'beta',
        subject: 'PR',
      }),
      'review m1 delivered to alpha from beta',
    ],
    [
      ev('dispatch.issue', { order_id: 'o1', assignee: 'beta', ticket: 'TOD-9' }),
      'order o1 (ticket TOD-9) dispatched to beta',
    ],
  ])('%#: %s', (event, expected) => {
    expect(summarize(event)).toBe(expected);
  });

  it('is one bounded line even for hostile input', () => {
    const s = summarize(ev('session.register', { role: 'a\nb\r\tc', task: 'y'.repeat(1000), blob: null }));
    expect(s).not.toMatch(/[\n\r\t]/);
    expect(s.length).toBeLessThanOrEqual(300);
    expect(s.endsWith('…')).toBe(true);
  });

  it('builds a valid observation carrying time, session, kind, resource, tx_id and source', () => {
    const e = ev('lock.acquire', { resource: 'repo', owner_session: 'alpha' }, { resource: 'repo' });
    const o = toObservation(e);
    expect(codec.validate(Schemas.observation, o)).toEqual({
      ts: e.ts,
      session_id: 'alpha',
      kind: 'lock.acquire',
      resource: 'repo',
      summary: 'alpha acquired lock repo',
      tx_id: e.tx_id,
      source: 'coord',
    });
  });
});
