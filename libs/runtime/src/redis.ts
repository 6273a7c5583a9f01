import Redis, { RedisOptions } from 'ioredis';

export interface CreateRedisOptions extends RedisOptions {
  /** Connection name shown by `CLIENT LIST` (helps operators see which service holds what). */
  name?: string;
}

/**
 * An ioredis connection from a `redis://` or `rediss://` URL (TLS, ACL user and password come
 * from the URL). Reconnects forever with capped backoff: a service outlives a Redis restart.
 */
export function createRedis(url: string, options: CreateRedisOptions = {}): Redis {
  const { name, ...rest } = options;
  return new Redis(url, {
    connectionName: name,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    reconnectOnError: (err) => err.message.startsWith('READONLY') || err.message.startsWith('LOADING'),
    ...rest,
  });
}

/** PING with a bound: resolves false instead of hanging when Redis is slow or down. */
export async function pingWithin(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (redis.status !== 'ready') return false;
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = await Promise.race([
      redis.ping(),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      }),
    ]);
    return result === 'PONG';
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
