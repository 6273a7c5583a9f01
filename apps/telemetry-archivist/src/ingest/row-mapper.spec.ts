import { Keyspace } from '@coordbus/envelope';
import { archivedStreamRefs, contentFromFields, parseEntryId, toArchiveRow } from './row-mapper';

const ks = new Keyspace('ns');
const refs = archivedStreamRefs(ks);
const ref = (key: string) => refs.find((r) => r.key === key)!;

describe('archivedStreamRefs', () => {
  it('names exactly Keyspace.archivedStreams, by key and full name', () => {
    expect(refs.map((r) => r.name).sort()).toEqual([...ks.archivedStreams].sort());
    expect(ref('coordIngest:dead')).toEqual({
      key: 'coordIngest:dead',
      source: 'coordIngest',
      dead: true,
      name: 'ns:coord:{ingest}:dead',
    });
  });
});

describe('parseEntryId', () => {
  it('splits <ms>-<seq> and refuses anything else', () => {
    expect(parseEntryId('1700000000000-12')).toEqual({ ms: 1700000000000, seq: 12 });
    expect(parseEntryId('abc')).toBeNull();
    expect(parseEntryId('1-')).toBeNull();
  });
});

describe('toArchiveRow', () => {
  it('extracts coord op columns, turning empty strings into nulls', () => {
    const env = {
      v: 0,
      ts: '2026-06-01T10:00:00.000Z',
      service: 'coord',
      host: 'h',
      level: 'warn',
      pid: 1,
      target: 't',
      msg: 'm',
      fields: {
        op: 'lock',
        session: 's1',
        resource: '',
        peer: '',
        duration_ms: 3,
        phase: 'post',
        exit_code: 0,
      },
    };
    const row = toArchiveRow(
      ref('coordIngest'),
      '5-1',
      contentFromFields({ type: 'coord-op', v: '0', data: JSON.stringify(env) }),
    );
    expect(row).toEqual({
      stream: 'ns:coord:{ingest}',
      entryId: '5-1',
      entryMs: 5,
      entrySeq: 1,
      type: 'coord-op',
      version: 0,
      data: JSON.stringify(env),
      tsMs: Date.parse(env.ts),
      kind: 'lock',
      session: 's1',
      resource: null,
      level: 'warn',
      status: null,
      source: 'coord',
      naturalKey: null,
      // The op and the message are words; the session is not (it has its own column).
      text: 'lock m',
    });
  });

  it('keys coord events by (source, tx_id) and telemetry by (source, event, ts, duration_ms)', () => {
    const ev = {
      tx_id: '01J00000000000000000000001',
      tx_kind: 'session.dereg',
      ts: '2026-06-01T10:00:00Z',
      source: 'sentinel',
      session_id: 's',
      resource: null,
      payload: { reason: 'ttl-expired' },
    };
    const er = toArchiveRow(ref('coordEvents'), '1-0', {
      type: 'coord-event',
      version: 1,
      data: JSON.stringify(ev),
      payload: ev,
    });
    expect(er).toMatchObject({
      kind: 'session.dereg',
      session: 's',
      source: 'sentinel',
      naturalKey: 'sentinel\u001f01J00000000000000000000001',
      text: 'session dereg ttl expired',
    });
    const t = {
      source: 'headroom',
      event: 'overhead',
      status: 'stall',
      duration_ms: 1200,
      detail: {},
      ts: '2026-06-01T10:00:00Z',
    };
    const tr = toArchiveRow(ref('telemetryEvents'), '1-0', {
      type: 'telemetry',
      version: 1,
      data: JSON.stringify(t),
    });
    expect(tr).toMatchObject({
      kind: 'overhead',
      status: 'stall',
      source: 'headroom',
      naturalKey: 'headroom\u001foverhead\u001f2026-06-01T10:00:00Z\u001f1200',
    });
  });

  it('archives a dead letter with the filter columns of its original entry', () => {
    const original = {
      v: 0,
      ts: 'x',
      service: 'coord',
      host: 'h',
      level: 'info',
      pid: 1,
      target: 't',
      msg: 'm',
      fields: { op: 'lock', session: 'sx', resource: 'r', phase: 'nope' },
    };
    const dl = {
      fields: { type: 'coord-op', v: '0', data: JSON.stringify(original) },
      source_stream: 'ns:coord:{ingest}',
      entry_id: '9-0',
      reason: 'invalid coord-op: fields.phase',
      error_code: 'Invalid',
      delivery_count: 1,
      group: 'archivist',
      consumer: 'c',
      ts: '2026-06-01T11:00:00Z',
    };
    const row = toArchiveRow(
      ref('coordIngest:dead'),
      '10-0',
      contentFromFields({ type: 'dead-letter', v: '1', data: JSON.stringify(dl) }),
    );
    expect(row).toMatchObject({
      stream: 'ns:coord:{ingest}:dead',
      kind: 'Invalid',
      session: 'sx',
      resource: 'r',
      source: 'ns:coord:{ingest}',
      tsMs: Date.parse(dl.ts),
      naturalKey: null,
      // The dead letter's code and reason, then the words of what was dead-lettered.
      text: 'invalid invalid coord op fields phase lock r m',
    });
  });

  it('never throws: non-JSON data and odd field records are archived whole', () => {
    const bad = toArchiveRow(
      ref('jobEvents'),
      '42-7',
      contentFromFields({ type: 'job-event', v: 'x', data: '{not json' }),
    );
    expect(bad).toMatchObject({ data: '{not json', version: null, kind: null, tsMs: 42 });
    const odd = toArchiveRow(ref('jobEvents'), '42-8', contentFromFields({ foo: 'bar' }));
    expect(odd).toMatchObject({ data: '{"foo":"bar"}', type: null, tsMs: 42 });
    const weird = toArchiveRow(ref('telemetryEvents'), 'nonsense', contentFromFields({ data: '[1,2]' }));
    expect(weird).toMatchObject({ entryMs: 0, entrySeq: 0, kind: null, data: '[1,2]' });
  });
});
