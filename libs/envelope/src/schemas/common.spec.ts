import fc from 'fast-check';
import { isISO8601, isRFC3339 } from 'class-validator';
import { ISO_OPTIONS, IsTimestampConstraint, isTimestamp } from './common';

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

// The text reader (compile.ts) matches a timestamp's text with the constraint's TextShape and then
// calls only `rest`: for every string of the shape, `rest` must be the whole check's verdict, and
// no string outside the shape may pass the whole check.
describe('IsTimestampConstraint.textShape', () => {
  const { pattern, rest } = new IsTimestampConstraint().textShape;
  const whole = new RegExp(`^(?:${pattern})$`);
  const edges = [
    '2024-02-29T00:00:00Z',
    '2023-02-29T00:00:00Z',
    '2000-02-29T12:00:00+01:00',
    '1900-02-29T12:00:00-01:00',
    '2100-02-29T00:00:00Z',
    '2026-02-28T23:59:59.999999999Z',
    '2026-04-30T00:00:00z',
    '2026-04-31T00:00:00Z',
    '2026-06-31T00:00:00Z',
    '2026-09-31T00:00:00Z',
    '2026-11-31T00:00:00Z',
    '2026-12-31T23:59:59+23:59',
    '2026-01-31T00:00:00-00:00',
    '2026-04-07T24:00:00Z',
    '2026-04-07T23:60:00Z',
    '2026-04-07T23:59:60Z',
    '2026-04-07T12:34:56.Z',
    '2026-04-07T12:34:56,5Z',
    '2026-04-07T12:34:56+24:00',
    '2026-04-07T12:34:56+05:60',
    '2026-04-07T12:34:56+0530',
    '2026-04-07t12:34:56Z',
    '2026-04-07 12:34:56Z',
    '2026-04-07T12:34:56',
    '2026-00-07T12:34:56Z',
    '2026-13-07T12:34:56Z',
    '2026-04-00T12:34:56Z',
    '2026-04-32T12:34:56Z',
    '0000-01-01T00:00:00Z',
    '0099-12-31T23:59:59Z',
    '0999-02-29T00:00:00Z',
    '1000-02-29T00:00:00Z',
    '9999-12-31T23:59:59.5-23:59',
    '2026-04-07T12:34:56.789Z\n',
    '\uff12026-04-07T12:34:56Z',
    '',
  ];
  const agrees = (v: string) => {
    if (whole.test(v)) expect(rest(v)).toBe(isTimestamp(v));
    else expect(isTimestamp(v)).toBe(false);
  };

  it('rest is the whole check on the shape, at the edges (leap days, 24:00, :60, offsets, fractions, years below 1000)', () => {
    for (const v of edges) agrees(v);
  });

  it('rest is the whole check on the shape, on near-miss timestamps', () => {
    fc.assert(fc.property(candidate, agrees), { numRuns: 20_000 });
  });

  it('matches no quote, backslash or control character (its text is the string itself)', () => {
    const damaged = fc
      .tuple(candidate, fc.nat(), fc.constantFrom('"', '\\', '\u0000', '\n', '\u001f', '\u007f', '\u2028'))
      .map(([v, at, c]) => v.slice(0, at % (v.length + 1)) + c + v.slice(at % (v.length + 1)));
    fc.assert(
      fc.property(fc.oneof(candidate, damaged, fc.string({ unit: 'binary' })), (v) => {
        if (whole.test(v)) expect(v).toMatch(/^[0-9TZz:.+-]+$/);
      }),
      { numRuns: 20_000 },
    );
    expect(new RegExp(`${pattern}|`).exec('')).toHaveLength(1); // no capturing group
  });
});
