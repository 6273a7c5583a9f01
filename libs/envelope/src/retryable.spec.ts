import { InvalidError, isRetryable, UnavailableError } from './errors';

describe('isRetryable', () => {
  it.each([
    ['UnavailableError', new UnavailableError('db down')],
    ['Redis OOM', new Error('OOM command not allowed when used memory > maxmemory.')],
    ['Redis READONLY', new Error("READONLY You can't write against a read only replica.")],
    ['Redis LOADING', new Error('LOADING Redis is loading the dataset in memory')],
    ['Redis BUSY', new Error('BUSY Redis is busy running a script.')],
    ['ioredis closed', new Error('Connection is closed.')],
    [
      'ioredis retries',
      Object.assign(new Error('Reached the max retries per request limit (which is 3).'), {
        name: 'MaxRetriesPerRequestError',
      }),
    ],
    ['socket reset', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['refused', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
    [
      'pg shutting down',
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
    ],
    ['pg too many clients', Object.assign(new Error('sorry, too many clients already'), { code: '53300' })],
  ])('a dependency outage: %s', (_name, err) => {
    expect(isRetryable(err)).toBe(true);
  });

  it.each([
    ['InvalidError', new InvalidError('bad', ['x'])],
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'x')")],
    ['Redis WRONGTYPE', new Error('WRONGTYPE Operation against a key holding the wrong kind of value')],
    ['pg unique violation', Object.assign(new Error('duplicate key value'), { code: '23505' })],
    ['not an error', 'boom'],
    ['nothing', undefined],
  ])('a failure of the entry itself: %s', (_name, err) => {
    expect(isRetryable(err)).toBe(false);
  });
});
