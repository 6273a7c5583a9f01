import { decodeTime } from 'ulid';
import { ULID_PATTERN } from '@coordbus/envelope';
import { deterministicUlid } from './deterministic-ulid';

describe('deterministicUlid', () => {
  it('is a valid ULID whose time part is the given time', () => {
    const t = Date.parse('2026-04-07T21:13:45.123Z');
    const id = deterministicUlid(t, 'session.register', 'alpha');
    expect(id).toMatch(ULID_PATTERN);
    expect(decodeTime(id)).toBe(t);
  });

  it('is a pure function of its inputs, and differs when any input differs', () => {
    const a = deterministicUlid(1000, 'lock.acquire', 'repo', 'alpha');
    expect(deterministicUlid(1000, 'lock.acquire', 'repo', 'alpha')).toBe(a);
    expect(deterministicUlid(1000, 'lock.acquire', 'repo', 'beta')).not.toBe(a);
    expect(deterministicUlid(1001, 'lock.acquire', 'repo', 'alpha')).not.toBe(a);
    // Part boundaries matter: ('ab','c') is not ('a','bc'), and null is not 'null'.
    expect(deterministicUlid(1, 'ab', 'c')).not.toBe(deterministicUlid(1, 'a', 'bc'));
    expect(deterministicUlid(1, null)).not.toBe(deterministicUlid(1, 'null'));
  });

  it('orders by time first', () => {
    expect(deterministicUlid(2000, 'x') > deterministicUlid(1999, 'y')).toBe(true);
  });

  it('clamps times outside the 48-bit range instead of producing an invalid id', () => {
    expect(deterministicUlid(-5, 'x')).toMatch(ULID_PATTERN);
    expect(deterministicUlid(Number.NaN, 'x')).toMatch(ULID_PATTERN);
    expect(deterministicUlid(2 ** 50, 'x')).toMatch(/^7ZZZZZZZZZ/);
  });
});
