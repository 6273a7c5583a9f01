import { InvalidError } from '@coordbus/envelope';
import { cliSettings } from './context';

// The same values as apps/job-coordinator/src/config.spec.ts: CLI and service read one definition.
describe('cliSettings', () => {
  it('accepts every duration form the service accepts', () => {
    const c = cliSettings({
      JOBS_RETENTION: '1w',
      JOBS_KILL_GRACE: '1500',
      JOBS_STALE_RUNNING_AFTER: '1h30m',
    });
    expect([c.retentionMs, c.killGraceMs, c.staleRunningAfterMs]).toEqual([604_800_000, 1500, 5_400_000]);
  });

  it('refuses what the service refuses, naming the variable (an InvalidError for the CLI)', () => {
    expect(() => cliSettings({ JOBS_LOG_MAX_RECORDS: '10' })).toThrow(InvalidError);
    expect(() => cliSettings({ JOBS_LOG_MAX_RECORDS: '10' })).toThrow(
      'JOBS_LOG_MAX_RECORDS must be an integer from 100',
    );
  });
});
