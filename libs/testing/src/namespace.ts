import Redis from 'ioredis';
import { Keyspace, newUlid } from '@coordbus/envelope';

/** The Redis every test talks to: `REDIS_URL` (set by the jest global setup when absent). */
export function testRedisUrl(): string {
  const url = process.env.REDIS_URL;
  if (!url)
    throw new Error('REDIS_URL is not set: run tests through jest (its global setup provides a Redis)');
  return url;
}

/** A namespace unique to one test, so tests never see each other's keys. */
export function testNamespace(label = 't'): string {
  return `test-${label.replace(/[^A-Za-z0-9_-]/g, '-')}-${newUlid().slice(-10).toLowerCase()}`;
}

/** A keyspace under a fresh test namespace. */
export function testKeyspace(label?: string): Keyspace {
  return new Keyspace(testNamespace(label));
}

/** Deletes every key of a namespace (SCAN + UNLINK, so it never blocks Redis). */
export async function cleanupNamespace(redis: Redis, keyspace: Keyspace | string): Promise<number> {
  const glob = typeof keyspace === 'string' ? `${keyspace}:*` : keyspace.glob;
  if (glob === '*') throw new Error('refusing to clean up the empty namespace');
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', glob, 'COUNT', 1000);
    cursor = next;
    if (keys.length) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (then throws with `what`). */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
  everyMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
