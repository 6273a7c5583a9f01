import { formatDuration, parseDuration } from './duration';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['10m', 600_000],
    ['2h', 7_200_000],
    ['7d', 604_800_000],
    ['1w', 604_800_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1500],
  ])('%s = %d ms', (raw, ms) => expect(parseDuration(raw)).toBe(ms));
  it.each(['', '10', 'm', '5 minutes', '-1s', '1x'])('refuses %j', (raw) =>
    expect(parseDuration(raw)).toBeUndefined(),
  );
  it('formats', () => {
    expect(formatDuration(50)).toBe('50ms');
    expect(formatDuration(3_723_000)).toBe('1h2m3s');
  });
});
