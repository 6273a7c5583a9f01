import { parseTimePoint } from './time-point';

const NOW = Date.parse('2026-06-01T12:00:00Z');

describe('parseTimePoint', () => {
  it.each([
    ['2h', NOW - 7_200_000],
    ['15m', NOW - 900_000],
    ['1h30m', NOW - 5_400_000],
    ['7d', NOW - 7 * 86_400_000],
    ['2026-06-01T10:00:00Z', Date.parse('2026-06-01T10:00:00Z')],
    ['2026-06-01t10:00:00.250z', Date.parse('2026-06-01T10:00:00.250Z')],
    ['2026-06-01T10:00:00+02:00', Date.parse('2026-06-01T08:00:00Z')],
    ['2026-06-01', Date.parse('2026-06-01T00:00:00Z')],
    ['1780308000000', 1_780_308_000_000],
    [' 2h ', NOW - 7_200_000],
  ])('%j = %d', (raw, ms) => expect(parseTimePoint(raw, NOW)).toBe(ms));

  it.each([
    '',
    'yesterday',
    '2h ago',
    '-2h',
    '10',
    '1700000000',
    '2026-02-30T00:00:00Z',
    '2026-13-01',
    '2026-06-01T24:00:00Z',
    '2026-06-01 10:00:00Z',
    '2026-W01',
    '1e12',
    '0x1780308000000',
  ])('refuses %j', (raw) => expect(parseTimePoint(raw, NOW)).toBeUndefined());
});
