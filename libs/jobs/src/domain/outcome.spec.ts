import { keepRecord, outcomeOf } from './outcome';

const end = { exitCode: null, signal: null, cancelled: false, timedOut: false };

describe('outcomeOf', () => {
  it('maps exits to statuses', () => {
    expect(outcomeOf({ ...end, exitCode: 0 }).status).toBe('succeeded');
    expect(outcomeOf({ ...end, exitCode: 3 })).toMatchObject({ status: 'failed', exit_code: 3 });
    expect(outcomeOf({ ...end, signal: 'SIGSEGV' })).toMatchObject({ status: 'signaled', signal: 'SIGSEGV' });
    expect(outcomeOf({ ...end, spawnError: 'ENOENT' })).toMatchObject({ status: 'failed', exit_code: 127 });
    expect(outcomeOf({ ...end, spawnError: 'EACCES' })).toMatchObject({ status: 'failed', exit_code: 126 });
  });
  it('lets a kill we asked for win over the exit it caused', () => {
    expect(outcomeOf({ ...end, signal: 'SIGTERM', cancelled: true }).status).toBe('cancelled');
    expect(outcomeOf({ ...end, exitCode: 143, cancelled: true }).status).toBe('cancelled');
    expect(outcomeOf({ ...end, signal: 'SIGKILL', timedOut: true }).status).toBe('timed-out');
  });
  it('ends a job whose exit status was lost with its parent crashed, with why', () => {
    const lost = 'the spawner ended';
    expect(outcomeOf({ ...end, lost, cancelled: true })).toMatchObject({ status: 'crashed', reason: lost });
  });
});

describe('keepRecord (sampling)', () => {
  it('keeps every nth stdout/stderr record by seq and every status record', () => {
    const kept = [1, 2, 3, 4, 5, 6, 7, 8, 9].filter((seq) => keepRecord(seq, 'stdout', 3));
    expect(kept).toEqual([3, 6, 9]);
    expect(keepRecord(7, 'status', 3)).toBe(true);
    expect(keepRecord(7, 'stderr', 1)).toBe(true);
  });
});
