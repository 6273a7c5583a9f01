import { type BoolVar, parseDuration } from '@coordbus/config';
import { DEFAULT_MAX_ENTRY_BYTES } from '@coordbus/envelope';
import { baseConfig, ConfigError, EnvReader } from './config';

describe('EnvReader', () => {
  it('uses defaults when variables are unset or empty', () => {
    const env = new EnvReader({ HTTP_PORT: '' });
    const cfg = baseConfig(env, { service: 'svc', defaultHttpPort: 8081 });
    env.finish();
    expect(cfg).toMatchObject({
      redisUrl: 'redis://127.0.0.1:6379',
      namespace: '',
      httpPort: 8081,
      logLevel: 'info',
    });
    expect(cfg.consumer).toMatch(/-\d+$/);
    expect(cfg.keyspace.coordIngest).toBe('coord:{ingest}');
  });

  it('applies the namespace to every name', () => {
    const env = new EnvReader({ COORDBUS_NAMESPACE: 'team-a' });
    const cfg = baseConfig(env, { service: 'svc', defaultHttpPort: 1 });
    env.finish();
    expect(cfg.keyspace.coordReplay).toBe('team-a:logs:stream:coord');
  });

  it('reports every bad variable at once, naming each and what it expects', () => {
    const env = new EnvReader({
      REDIS_URL: 'http://x',
      HTTP_PORT: '70000',
      LOG_LEVEL: 'loud',
      SHUTDOWN_TIMEOUT_MS: 'soon',
    });
    baseConfig(env, { service: 'svc', defaultHttpPort: 1 });
    let err: unknown;
    try {
      env.finish();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    expect(problems).toContain('REDIS_URL must be a URL with scheme redis:// or rediss://');
    expect(problems).toContain('HTTP_PORT must be an integer from 0 to 65535 (got "70000")');
    expect(problems).toContain('LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent');
    expect(problems).toContain('SHUTDOWN_TIMEOUT_MS must be a duration');
  });

  it('takes the entry size default from the envelope limit', () => {
    const env = new EnvReader({});
    expect(baseConfig(env, { service: 'svc', defaultHttpPort: 1 }).maxEntryBytes).toBe(
      DEFAULT_MAX_ENTRY_BYTES,
    );
  });

  it('reads every service duration with the one parser: units, weeks and compounds too', () => {
    const env = new EnvReader({ SHUTDOWN_TIMEOUT_MS: '1m30s', STREAM_RECLAIM_IDLE_MS: '1w' });
    const cfg = baseConfig(env, { service: 'svc', defaultHttpPort: 1 });
    env.finish();
    expect([cfg.shutdownTimeoutMs, cfg.streams.reclaimIdleMs]).toEqual([90_000, 604_800_000]);
  });

  it('parses durations and booleans', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('42', 'ms')).toBe(42);
    expect(parseDuration('-1s')).toBeUndefined();
    const flag = (name: string, def: boolean): BoolVar => ({ kind: 'bool', name, default: def, doc: '' });
    const env = new EnvReader({ A: 'yes', B: 'off', C: 'maybe' });
    expect([env.get(flag('A', false)), env.get(flag('B', true)), env.get(flag('C', true))]).toEqual([
      true,
      false,
      true,
    ]);
    expect(() => env.finish()).toThrow('C must be a boolean');
  });
});
