import {
  EnvelopeCodec,
  InvalidError,
  SchemaMismatchError,
  Schemas,
  TooLargeError,
  newUlid,
} from '@coordbus/envelope';

const codec = new EnvelopeCodec();

const coordOp = () => ({
  v: 0 as const,
  ts: '2026-04-07T12:34:56.789Z',
  service: 'coord',
  host: 'box',
  level: 'info' as const,
  pid: 12345,
  target: 'coord::register',
  msg: 'coord.register start',
  fields: {
    op: 'register',
    session: 's1',
    resource: '',
    peer: '',
    duration_ms: 0,
    phase: 'pre' as const,
    exit_code: 0,
  },
});

describe('EnvelopeCodec', () => {
  it('round-trips a coord op envelope through stream fields', () => {
    const fields = codec.encode(Schemas.coordOp, coordOp());
    expect(fields.slice(0, 4)).toEqual(['type', 'coord-op', 'v', '0']);
    expect(JSON.parse(JSON.stringify(codec.decode(Schemas.coordOp, fields)))).toEqual(coordOp());
  });

  it('names every failing path', () => {
    const bad = { ...coordOp(), level: 'debug', fields: { ...coordOp().fields, phase: 'middle' } };
    const fields = ['type', 'coord-op', 'v', '0', 'data', JSON.stringify(bad)];
    try {
      codec.decode(Schemas.coordOp, fields);
      throw new Error('expected InvalidError');
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidError);
      expect((err as InvalidError).paths.map((p) => p.split(':')[0]).sort()).toEqual([
        'fields.phase',
        'level',
      ]);
    }
  });

  it('refuses a newer major version', () => {
    const fields = ['type', 'coord-event', 'v', '2', 'data', '{}'];
    expect(() => codec.decode(Schemas.coordEvent, fields)).toThrow(SchemaMismatchError);
  });

  it('refuses an entry over the size limit', () => {
    const small = new EnvelopeCodec({ maxBytes: 200 });
    expect(() => small.encode(Schemas.coordOp, { ...coordOp(), msg: 'x'.repeat(300) })).toThrow(
      TooLargeError,
    );
  });

  it('validates a coord event payload by its kind', () => {
    const event = {
      tx_id: newUlid(),
      tx_kind: 'dispatch.issue',
      ts: '2026-04-07T21:13:45.123Z',
      ingress_ts: null,
      source: 'coord',
      session_id: 's1',
      resource: null,
      payload: { order_id: 'o1', assignee: 's2' },
    };
    expect(() => codec.validate(Schemas.coordEvent, event)).toThrow(/payload\.ticket/);
  });
});
