import { PassThrough } from 'node:stream';
import { testKeyspace, testRedisUrl } from '@coordbus/testing';
import { runTail } from '../src/tail/live';

const text = (s: PassThrough) => (s.read() ?? '').toString();

describe('coordbus tail says what it is connected to', () => {
  it('names the Redis (via redactUrl: no password), the namespace and the channel pattern on stderr, not stdout', async () => {
    const ks = testKeyspace('tailbanner');
    const out = new PassThrough();
    const err = new PassThrough();
    const stop = new AbortController();
    const done = runTail({}, out, {
      env: { REDIS_URL: testRedisUrl(), COORDBUS_NAMESPACE: ks.namespace },
      err,
      signal: stop.signal,
      onSubscribed: () => stop.abort(),
    });
    expect(await done).toBe(0);
    const banner = text(err);
    expect(banner).toBe(
      `coordbus tail: connected to ${testRedisUrl()}, namespace ${ks.namespace}, following ${ks.coordLevelPattern} (Ctrl-C stops)\n`,
    );
    expect(text(out)).toBe('');
  });
});
