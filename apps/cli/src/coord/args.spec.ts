import { parseArgs, seconds, UsageError } from './args';

describe('coord argv parser', () => {
  const spec = { bool: ['force'], value: ['ttl', 'reason'] };

  it('reads positionals, boolean flags, --k v and --k=v, and -- ends options', () => {
    expect(
      parseArgs(['lock', 'r', '--ttl', '5', '--reason=ci', '--force', '--', '--not-a-flag'], spec),
    ).toEqual({
      positional: ['lock', 'r', '--not-a-flag'],
      flags: { ttl: '5', reason: 'ci', force: true },
    });
  });

  it('refuses unknown flags, missing values and values on boolean flags', () => {
    expect(() => parseArgs(['lock', '--nope'], spec)).toThrow(new UsageError('unknown option --nope'));
    expect(() => parseArgs(['lock', '--ttl'], spec)).toThrow('--ttl needs a value');
    expect(() => parseArgs(['lock', '--force=yes'], spec)).toThrow('--force takes no value');
    expect(() => parseArgs(['lock', '-x'], spec)).toThrow('unknown option -x');
  });

  it('parses durations (a bare number is seconds) into ms and refuses what is not positive', () => {
    expect(seconds('ttl', '1.5')).toBe(1500);
    expect(seconds('ttl', '10m')).toBe(600_000);
    expect(seconds('timeout', '1m30s', true)).toBe(90_000);
    expect(seconds('ttl', undefined)).toBeUndefined();
    expect(seconds('timeout', '0', true)).toBe(0);
    expect(() => seconds('ttl', '0')).toThrow(
      '--ttl must be a positive duration like 90s, 5m or a number of seconds',
    );
    expect(() => seconds('ttl', 'soon')).toThrow(UsageError);
    expect(() => seconds('ttl', '-1', true)).toThrow('non-negative');
  });
});
