import { EnvelopeCodec, Keyspace } from '@coordbus/envelope';
import { resolveServerOptions } from './options';

const defaults = { consumer: 'host-1', codec: new EnvelopeCodec() };
const keyspace = new Keyspace('ns');

describe('resolveServerOptions', () => {
  it('fills the documented defaults', () => {
    const o = resolveServerOptions({ url: 'redis://127.0.0.1:6379', keyspace }, defaults);
    expect(o).toMatchObject({
      consumer: 'host-1',
      batchSize: 100,
      blockMs: 2000,
      concurrency: 64,
      maxDeliveries: 5,
      reclaimIdleMs: 30_000,
      reclaimIntervalMs: 15_000,
      retryDelayMs: 250,
      ackFlushMs: 0,
      ackBatchSize: 256,
      deadLetterMaxLen: 100_000,
      consumerIdleRemoveMs: 3_600_000,
      consumerSweepIntervalMs: 60_000,
    });
    expect(
      resolveServerOptions({ url: 'rediss://u:p@h:1', keyspace, reclaimIdleMs: 100 }, defaults)
        .reclaimIntervalMs,
    ).toBe(250);
  });

  it.each([
    [{ url: 'http://x' }, /url must be a redis:\/\/ or rediss:\/\/ URL/],
    [{ batchSize: 0 }, /batchSize must be an integer >= 1 \(got 0\)/],
    [{ concurrency: 1.5 }, /concurrency must be an integer >= 1/],
    [{ maxDeliveries: -1 }, /maxDeliveries must be an integer >= 1/],
    [{ blockMs: Number.NaN }, /blockMs must be an integer >= 1/],
    [{ retryDelayMs: -5 }, /retryDelayMs must be an integer >= 0/],
    [{ consumer: '' }, /consumer must not be empty/],
  ])('refuses %j with a message naming the option', (bad, message) => {
    expect(() => resolveServerOptions({ url: 'redis://h:6379', keyspace, ...bad }, defaults)).toThrow(
      message,
    );
  });

  it('requires a keyspace', () => {
    expect(() => resolveServerOptions({ url: 'redis://h:6379' } as never, defaults)).toThrow(
      /keyspace is required/,
    );
  });
});
