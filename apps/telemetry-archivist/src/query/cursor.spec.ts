import { decodeCursor, encodeCursor } from './cursor';

describe('cursor', () => {
  it('round-trips a position', () => {
    const c = { entryMs: 1700000000000, entrySeq: 3, stream: 'coord:{ingest}', order: 'desc' as const };
    expect(decodeCursor(encodeCursor(c))).toEqual(c);
  });

  it('refuses anything it did not make', () => {
    for (const bad of [
      '',
      'abc',
      Buffer.from('[1,2]').toString('base64url'),
      Buffer.from('[1,-1,0,"s","asc"]').toString('base64url'),
    ]) {
      expect(() => decodeCursor(bad)).toThrow(/cursor is not one this API returned/);
    }
  });
});
