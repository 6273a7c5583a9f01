import Redis from 'ioredis';
import { EnvelopeCodec, Keyspace } from '@coordbus/envelope';
import { cleanupNamespace, testKeyspace, testRedisUrl } from '@coordbus/testing';
import { TelemetryEmitter } from '../src/emit/telemetry-emitter';
import type { Checkpoint } from '../src/follow/file-identity';

/**
 * A commit whose reply a dropped connection lost is sent again by the client after a reconnect,
 * though Redis ran it: the range must not be appended twice (the soak saw a breach event twice).
 */
describe('TelemetryEmitter.commit sent twice', () => {
  let redis: Redis;
  let keyspace: Keyspace;
  let emitter: TelemetryEmitter;
  const ref = { source: 'headroom', path: '/var/log/headroom.log' };

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
    keyspace = testKeyspace('tailer-resend');
    emitter = new TelemetryEmitter(redis, keyspace, new EnvelopeCodec(), 0);
  });
  afterAll(async () => {
    await cleanupNamespace(redis, keyspace);
    redis.disconnect();
  });

  const event = (n: number) =>
    emitter.encode({
      source: 'headroom',
      event: 'overhead',
      status: 'stall',
      duration_ms: n,
      detail: { kind: 'breach', request_id: `r-${n}` },
      ts: new Date(Date.UTC(2026, 5, 1, 0, 0, n)).toISOString(),
    });
  const checkpoint = (offset: number, at: string): Checkpoint =>
    ({
      v: 1,
      dev: 1,
      ino: 2,
      fingerprint: 'f',
      offset,
      episode: null,
      updated_at: at,
    }) as unknown as Checkpoint;

  it('appends a range once, and the next range after it', async () => {
    const first = checkpoint(100, '2026-06-01T00:00:01.000Z');
    expect(await emitter.commit([event(1), event(2)], ref, first)).toBe(2);
    // The same call again, byte for byte: what a client resends.
    expect(await emitter.commit([event(1), event(2)], ref, first)).toBe(0);
    expect(await redis.xlen(keyspace.telemetryEvents)).toBe(2);
    // The next range (a new checkpoint) is appended as usual, also after a resend.
    expect(await emitter.commit([event(3)], ref, checkpoint(150, '2026-06-01T00:00:02.000Z'))).toBe(1);
    expect(await redis.xlen(keyspace.telemetryEvents)).toBe(3);
    const stored = JSON.parse((await emitter.loadCheckpoint(ref))!) as Checkpoint;
    expect(stored.offset).toBe(150);
  });
});
