import fc from 'fast-check';
import { isISO8601, isRFC3339 } from 'class-validator';
import { ISO_OPTIONS, isTimestamp } from './common';

/** The one-pass timestamp check against the pair of validator.js checks it replaces. */
const reference = (v: unknown): boolean => typeof v === 'string' && isRFC3339(v) && isISO8601(v, ISO_OPTIONS);

// Timestamps built field by field over (and just past) every range, so near misses are common:
// day 29-31 of every month in leap and common years, hour 24, second 60, t/space separators,
// odd zones, fractions with a comma.
const two = (max: number) => fc.integer({ min: 0, max }).map((n) => String(n).padStart(2, '0'));
const candidate = fc
  .tuple(
    fc.oneof(
      fc.constantFrom('2024', '2023', '2000', '1900', '0000', '2100', '9999'),
      fc.stringMatching(/^\d{4}$/),
    ),
    two(13),
    two(32),
    fc.constantFrom('T', 't', ' ', '_'),
    two(24),
    two(60),
    two(61),
    fc.constantFrom('', '.5', '.123456789', ',5', '.'),
    fc.constantFrom('Z', 'z', '+00:00', '-23:59', '+24:00', '+05', '+0530', '', 'UTC'),
  )
  .map(([y, mo, d, sep, h, mi, s, frac, zone]) => `${y}-${mo}-${d}${sep}${h}:${mi}:${s}${frac}${zone}`);

describe('isTimestamp', () => {
  it('agrees with isRFC3339 && isISO8601(strict) on near-miss timestamps', () => {
    fc.assert(
      fc.property(candidate, (v) => expect(isTimestamp(v)).toBe(reference(v))),
      { numRuns: 20_000 },
    );
  });

  it('agrees on arbitrary strings and non-strings', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.anything()), (v) => expect(isTimestamp(v)).toBe(reference(v))),
      { numRuns: 5_000 },
    );
  });

  it('knows leap days', () => {
    expect(isTimestamp('2024-02-29T00:00:00Z')).toBe(true);
    expect(isTimestamp('2000-02-29T00:00:00Z')).toBe(true);
    expect(isTimestamp('1900-02-29T00:00:00Z')).toBe(false);
    expect(isTimestamp('2026-04-31T00:00:00Z')).toBe(false);
  });
});
