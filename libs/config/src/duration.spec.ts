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
    [' 5m ', 300_000],
  ])('%s = %d ms', (raw, ms) => expect(parseDuration(raw)).toBe(ms));
  it.each(['', '10', 'm', '5 minutes', '-1s', '1x', '1h-5m', 'Infinity', '1e3'])('refuses %j', (raw) =>
    expect(parseDuration(raw)).toBeUndefined(),
  );
  it('reads a bare number in the unit the caller names, and the same units beside it', () => {
    expect(parseDuration('300', 's')).toBe(300_000);
    expect(parseDuration('0.5', 's')).toBe(500);
    expect(parseDuration('300', 'ms')).toBe(300);
    expect(parseDuration('5m', 's')).toBe(300_000);
    expect(parseDuration('300s', 'ms')).toBe(300_000);
    expect(parseDuration('1w', 'ms')).toBe(604_800_000);
  });
  it('formats', () => {
    expect(formatDuration(50)).toBe('50ms');
    expect(formatDuration(3_723_000)).toBe('1h2m3s');
    expect(formatDuration(604_800_000)).toBe('7d');
  });
});
