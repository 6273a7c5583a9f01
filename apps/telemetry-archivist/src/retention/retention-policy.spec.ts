import { parseRetention, ruleFor } from './retention-policy';

describe('parseRetention', () => {
  it('reads per-stream age and row rules with a * default', () => {
    const p = parseRetention('*=30d, telemetryEvents=7d/100000 ,coordIngest:dead=/50');
    expect(p.get('*')).toEqual({ maxAgeMs: 30 * 86_400_000 });
    expect(p.get('telemetryEvents')).toEqual({ maxAgeMs: 7 * 86_400_000, maxRows: 100000 });
    expect(ruleFor(p, 'coordIngest:dead')).toEqual({ maxRows: 50 });
    expect(ruleFor(p, 'jobEvents')).toEqual({ maxAgeMs: 30 * 86_400_000 });
    expect(parseRetention('').size).toBe(0);
  });

  it('refuses unknown streams, empty rules and repeats', () => {
    expect(() => parseRetention('logs=1d')).toThrow(/stream one of/);
    expect(() => parseRetention('jobEvents=')).toThrow(/neither an age nor a row count/);
    expect(() => parseRetention('jobEvents=1d,jobEvents=2d')).toThrow(/two rules/);
    expect(() => parseRetention('jobEvents=3x')).toThrow(/age 3x is not a duration/);
  });

  it('reads ages with the one duration parser: weeks, compounds, bare milliseconds', () => {
    const p = parseRetention('*=1w,jobEvents=1d12h,coordIngest=5000');
    expect([p.get('*'), p.get('jobEvents'), p.get('coordIngest')]).toEqual([
      { maxAgeMs: 604_800_000 },
      { maxAgeMs: 36 * 3_600_000 },
      { maxAgeMs: 5000 },
    ]);
  });
});
