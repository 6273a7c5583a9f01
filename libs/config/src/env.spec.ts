import { ConfigError, EnvReader, readVar } from './env';
import { COORD_SESSION_TTL, JOBS_VARS, SHARED_VARS } from './variables';

describe('readVar / EnvReader.get', () => {
  it('gives the default when unset or empty', () => {
    expect(readVar({}, JOBS_VARS.JOBS_RETENTION)).toEqual({ ok: true, value: 7 * 86_400_000 });
    expect(readVar({ JOBS_RETENTION: '' }, JOBS_VARS.JOBS_RETENTION)).toEqual({
      ok: true,
      value: 7 * 86_400_000,
    });
    expect(readVar({}, SHARED_VARS.HTTP_PORT, 8084)).toEqual({ ok: true, value: 8084 });
  });

  it('reads every duration variable with the one parser (units, weeks, compounds, bare numbers)', () => {
    const get = (raw: string) => readVar({ JOBS_RETENTION: raw }, JOBS_VARS.JOBS_RETENTION);
    expect(get('1w')).toEqual({ ok: true, value: 604_800_000 });
    expect(get('1d12h')).toEqual({ ok: true, value: 36 * 3_600_000 });
    expect(get('300')).toEqual({ ok: true, value: 300 });
  });

  it('reads COORD_SESSION_TTL in seconds when bare, with units otherwise, within its bounds', () => {
    const get = (raw: string) => readVar({ COORD_SESSION_TTL: raw }, COORD_SESSION_TTL);
    expect(get('300')).toEqual({ ok: true, value: 300_000 });
    expect(get('2.5')).toEqual({ ok: true, value: 2500 });
    expect(get('5m')).toEqual({ ok: true, value: 300_000 });
    expect(get('300s')).toEqual({ ok: true, value: 300_000 });
    for (const bad of ['0', 'soon', '-1', '31d']) {
      const r = get(bad);
      expect(r.ok).toBe(false);
      expect(!r.ok && r.problem).toBe(
        `COORD_SESSION_TTL must be a positive number of seconds or a duration like 90s, 5m, 1h, up to 30d (got ${JSON.stringify(bad)})`,
      );
    }
  });

  it('collects every problem, each naming the variable and what it expects', () => {
    const env = new EnvReader({ JOBS_RETENTION: 'forever', JOBS_CONCURRENCY: '0', REDIS_CLUSTER: 'maybe' });
    expect(env.get(JOBS_VARS.JOBS_RETENTION)).toBe(7 * 86_400_000);
    env.get(JOBS_VARS.JOBS_CONCURRENCY);
    env.get(SHARED_VARS.REDIS_CLUSTER);
    let err: unknown;
    try {
      env.finish();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([
      'JOBS_RETENTION must be a duration like 250ms, 5s, 10m, 1h, 7d, 1w, or a bare number of milliseconds, from 0ms (got "forever")',
      'JOBS_CONCURRENCY must be an integer from 1 to 256 (got "0")',
      'REDIS_CLUSTER must be a boolean (1/0, true/false, yes/no, on/off) (got "maybe")',
    ]);
  });
});
