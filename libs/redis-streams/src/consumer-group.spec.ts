import { EnvelopeCodec, ErrorCode, Schemas } from '@coordbus/envelope';
import { compareIds, encodeDeadLetter } from './consumer-group';

describe('compareIds', () => {
  it('orders stream ids numerically, not as text', () => {
    expect(['10-0', '9-5', '9-10', '100-0'].sort(compareIds)).toEqual(['9-5', '9-10', '10-0', '100-0']);
  });
});

describe('encodeDeadLetter', () => {
  const codec = new EnvelopeCodec();
  const base = {
    source_stream: 's',
    entry_id: '1-0',
    reason: 'bad',
    error_code: ErrorCode.Invalid,
    delivery_count: 1,
    group: 'g',
    consumer: 'c',
    ts: '2026-01-01T00:00:00.000Z',
  };

  it('writes the one dead-letter shape, decodable as Schemas.deadLetter', () => {
    const fields = encodeDeadLetter(codec, { ...base, fields: { a: '1' } });
    expect(codec.decode(Schemas.deadLetter, fields)).toMatchObject({ ...base, fields: { a: '1' } });
  });

  it('replaces an original too large to copy by a note of its size, keeping reason and id', () => {
    const big = 'x'.repeat(codec.limitFor(Schemas.deadLetter) + 1);
    const fields = encodeDeadLetter(codec, { ...base, fields: { big } });
    const dead = codec.decode(Schemas.deadLetter, fields);
    expect(dead.fields).toEqual({
      truncated: expect.stringMatching(/^original entry of \d+ bytes was too large to copy$/),
    });
    expect(dead).toMatchObject({ entry_id: '1-0', reason: 'bad' });
  });
});
