import { FEED_STREAM_KEYS, FeedCursor, compareIds, formatCursor, parseCursor } from './feed-cursor';

const cursor = (): FeedCursor => ({
  ids: Object.fromEntries(
    FEED_STREAM_KEYS.map((k, i) => [k, `${1700000000000 + i}-${i}`]),
  ) as FeedCursor['ids'],
  hb: 1700000000123,
});

describe('feed cursor', () => {
  it('round-trips', () => {
    const c = cursor();
    expect(parseCursor(formatCursor(c))).toEqual(c);
  });

  it('refuses anything it did not make', () => {
    const good = formatCursor(cursor());
    for (const bad of [
      '',
      undefined,
      'garbage',
      good.replace('hb=', 'hx='),
      good.replace(/ce=[^;]+/, 'ce=0x10-0'),
      good.replace(/;hb=\d+/, ''),
      good.replace(/ce=[^;]+;/, ''),
      `${good};zz=1-0`,
      'x'.repeat(3000),
    ]) {
      expect(parseCursor(bad)).toBeNull();
    }
  });

  it('orders entry ids numerically, not as text', () => {
    expect(compareIds('9-0', '10-0')).toBe(-1);
    expect(compareIds('10-2', '10-10')).toBe(-1);
    expect(compareIds('10-10', '10-10')).toBe(0);
    expect(compareIds('11-0', '10-99')).toBe(1);
  });
});
