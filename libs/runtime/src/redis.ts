import type Redis from 'ioredis';
import type { ClusterOptions, RedisOptions } from 'ioredis';
import { openRedis } from '@coordbus/redis-streams';

export { duplicateRedis, isCluster, redisUrlOptions } from '@coordbus/redis-streams';

export interface CreateRedisOptions extends RedisOptions {
  /** Connection name shown by `CLIENT LIST` (helps operators see which service holds what). */
  name?: string;
  /**
   * Redis Cluster mode (`REDIS_CLUSTER=1`, `BaseConfig.redisCluster`): the URL names one seed node
   * and the connection is an ioredis `Cluster` routing each command to its slot's owner.
   */
  cluster?: boolean;
  /** Extra `Cluster` options (cluster mode only). */
  clusterOptions?: Partial<Omit<ClusterOptions, 'redisOptions'>>;
}

/**
 * An ioredis connection from a `redis://` or `rediss://` URL (TLS, ACL user and password come
 * from the URL). Reconnects forever with capped backoff: a service outlives a Redis restart.
 *
 * With `cluster: true` it is an ioredis `Cluster` seeded from the URL, typed as `Redis` (a
 * documented cast, see `openRedis` in @coordbus/redis-streams): use `duplicateRedis` rather than
 * `duplicate()`, and keep every pipeline and MULTI within one hash tag.
 */
export function createRedis(url: string, options: CreateRedisOptions = {}): Redis {
  const { name, cluster, clusterOptions, ...rest } = options;
  return openRedis(url, {
    cluster,
    clusterOptions,
    redisOptions: {
      connectionName: name,
      reconnectOnError: (err) => err.message.startsWith('READONLY') || err.message.startsWith('LOADING'),
      ...rest,
    },
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
