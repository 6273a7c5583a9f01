import { ConfigError, EnvReader } from '@coordbus/config';
import { jobsConfig } from './config';

// The same values as apps/cli/src/jobs/context.spec.ts: service and CLI read one definition.
describe('jobsConfig', () => {
  const service = (vars: NodeJS.ProcessEnv) => {
    const env = new EnvReader(vars);
    const config = jobsConfig(env);
    env.finish();
    return config;
  };

  it('accepts every duration form (JOBS_RETENTION=1w was refused here while the CLI took it)', () => {
    const s = service({ JOBS_RETENTION: '1w', JOBS_KILL_GRACE: '1500', JOBS_STALE_RUNNING_AFTER: '1h30m' });
    expect([s.retentionMs, s.killGraceMs, s.staleRunningAfterMs]).toEqual([604_800_000, 1500, 5_400_000]);
  });

  it('runs jobs at niceness 10 unless JOBS_NICE says otherwise, within 0-19', () => {
    expect(service({}).nice).toBe(10);
    expect(service({ JOBS_NICE: '0' }).nice).toBe(0);
    expect(() => service({ JOBS_NICE: '-5' })).toThrow('JOBS_NICE must be an integer from 0');
    expect(() => service({ JOBS_NICE: '20' })).toThrow(ConfigError);
  });

  it('starts jobs with the spawn addon unless JOBS_NATIVE_SPAWN=0, and refuses what is not a boolean', () => {
    expect(service({}).nativeSpawn).toBe(true);
    expect(service({ JOBS_NATIVE_SPAWN: '0' }).nativeSpawn).toBe(false);
    expect(() => service({ JOBS_NATIVE_SPAWN: 'fork' })).toThrow(/JOBS_NATIVE_SPAWN/);
  });

  it('refuses a value out of bounds, naming the variable', () => {
    expect(() => service({ JOBS_LOG_MAX_RECORDS: '10' })).toThrow(ConfigError);
    expect(() => service({ JOBS_LOG_MAX_RECORDS: '10' })).toThrow(
      'JOBS_LOG_MAX_RECORDS must be an integer from 100',
    );
  });
});
