import Redis from 'ioredis';
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
  const redis = openRedis(url, {
    cluster,
    clusterOptions,
    redisOptions: {
      connectionName: name,
      reconnectOnError: (err) => err.message.startsWith('READONLY') || err.message.startsWith('LOADING'),
      ...rest,
    },
  });
  // Without a listener ioredis prints "Unhandled error event" on every failed reconnect; the
  // outage is already visible in /readyz, so one warning per outage is enough.
  let reported = false;
  redis.on('error', (err: Error) => {
    if (reported) return;
    reported = true;
    process.emitWarning(`redis ${name ?? 'connection'}: ${err.message} (reconnecting)`);
  });
  redis.on('ready', () => {
    reported = false;
  });
  return redis;
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

/**
 * Checks that REDIS_CLUSTER matches what REDIS_URL names (`INFO cluster` on that node, bounded by
 * `timeoutMs`): a single-node client on a cluster node gets MOVED for most keys, and a Cluster
 * client on a plain Redis never becomes ready. Returns the problem in ConfigError wording, or
 * undefined when they match or Redis cannot be asked now (a service may start before Redis).
 */
export async function redisModeProblem(
  url: string,
  cluster: boolean,
  timeoutMs = 1000,
): Promise<string | undefined> {
  const probe = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    const enabled = /cluster_enabled:1/.test(String(await probe.info('cluster')));
    if (enabled && !cluster)
      return 'REDIS_CLUSTER must be 1: REDIS_URL names a node of a Redis Cluster (cluster_enabled:1)';
    if (!enabled && cluster)
      return 'REDIS_CLUSTER must be 0 or unset: REDIS_URL names a Redis without cluster support (cluster_enabled:0)';
    return undefined;
  } catch {
    return undefined;
  } finally {
    probe.disconnect();
  }
}
