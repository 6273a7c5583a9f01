import { JOB_STATUSES } from '@coordbus/envelope';
import { lsCommand } from './commands';

describe('coordbus jobs ls --status', () => {
  it('names every valid status when given an invalid one (before touching Redis)', async () => {
    const err = await lsCommand({ status: 'bogus' }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toBe(`--status must be one of ${JOB_STATUSES.join(', ')} (got "bogus")`);
    expect(JOB_STATUSES).toEqual(expect.arrayContaining(['queued', 'running', 'succeeded', 'failed']));
  });
});
