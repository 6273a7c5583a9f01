import { ULID_PATTERN, createUlidFactory, newUlid } from '@coordbus/envelope';
import { decodeTime, encodeTime } from 'ulid';

const N = 10_000;

/** True when every id sorts strictly after the one before it (ULIDs compare as strings). */
function strictlyIncreasing(ids: string[]): boolean {
  return ids.every((id, i) => i === 0 || ids[i - 1] < id);
}

describe('createUlidFactory', () => {
  it(`makes ${N} strictly increasing ULIDs within one millisecond`, () => {
    const next = createUlidFactory();
    const t = Date.UTC(2026, 3, 7, 21, 13, 45, 123);
    const ids = Array.from({ length: N }, () => next(t));
    expect(ids.every((id) => ULID_PATTERN.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(N);
    expect(strictlyIncreasing(ids)).toBe(true);
    // All in the same millisecond: the time part is the same and decodes back.
    expect(new Set(ids.map((id) => id.slice(0, 10)))).toEqual(new Set([encodeTime(t, 10)]));
    expect(decodeTime(ids[N - 1])).toBe(t);
  });

  it(`stays strictly increasing over ${N} ids at the real clock`, () => {
    const next = createUlidFactory();
    const ids = Array.from({ length: N }, () => next());
    expect(strictlyIncreasing(ids)).toBe(true);
    expect(Math.abs(decodeTime(ids[0]) - Date.now())).toBeLessThan(60_000);
  });

  it('stays increasing when the clock steps back', () => {
    const next = createUlidFactory();
    const t = Date.UTC(2026, 3, 7);
    const ids = [next(t), next(t - 1000), next(t - 60_000), next(t), next(t + 1)];
    expect(strictlyIncreasing(ids)).toBe(true);
    expect(decodeTime(ids[4])).toBe(t + 1);
  });

  it('later milliseconds sort after earlier ones across factories', () => {
    const a = createUlidFactory();
    const b = createUlidFactory();
    const t = Date.UTC(2026, 3, 7);
    expect(a(t) < b(t + 1)).toBe(true);
    expect(b(t + 1) < a(t + 2)).toBe(true);
  });
});

describe('newUlid (process-wide factory)', () => {
  it(`is monotonic across ${N} ids in the same millisecond`, () => {
    const t = Date.now();
    const ids = Array.from({ length: N }, () => newUlid(t));
    expect(new Set(ids).size).toBe(N);
    expect(strictlyIncreasing(ids)).toBe(true);
    expect(ids.every((id) => ULID_PATTERN.test(id))).toBe(true);
  });

  it('is monotonic without a seed time', () => {
    const ids = Array.from({ length: N }, () => newUlid());
    expect(strictlyIncreasing(ids)).toBe(true);
  });
});

describe('ULID_PATTERN', () => {
  it.each([
    ['01JABCDEF0TXSD0123456789AB', true],
    ['7ZZZZZZZZZZZZZZZZZZZZZZZZZ', true],
    ['8ZZZZZZZZZZZZZZZZZZZZZZZZZ', false], // overflows 128 bits
    ['01jabcdef0txsd0123456789ab', false], // lower case
    ['01JABCDEF0TXSD0123456789A', false], // 25 chars
    ['01JABCDEF0TXSD0123456789ABC', false], // 27 chars
    ['01JABCDEF0TXSD0123456789AI', false], // I is not Crockford base32
    ['01JABCDEF0TXSD0123456789AL', false],
    ['01JABCDEF0TXSD0123456789AO', false],
    ['01JABCDEF0TXSD0123456789AU', false],
    [' 01JABCDEF0TXSD0123456789A', false],
  ])('%s -> %s', (id, ok) => {
    expect(ULID_PATTERN.test(id)).toBe(ok);
  });
});
