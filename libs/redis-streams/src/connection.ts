import Redis, { Cluster, ClusterOptions, RedisOptions } from 'ioredis';
import { redisUrlOptions } from '@coordbus/config';

/** How {@link openRedis} connects. */
export interface OpenRedisOptions {
  /**
   * Redis Cluster mode: the URL names one seed node and the connection is an ioredis `Cluster`
   * that discovers the other nodes and routes each command to its slot's owner.
   */
  cluster?: boolean;
  /** ioredis options of the connection (in cluster mode: of every node connection). */
  redisOptions?: Partial<RedisOptions>;
  /** Extra `Cluster` options (cluster mode only). */
  clusterOptions?: Partial<Omit<ClusterOptions, 'redisOptions'>>;
}

/** Capped exponential backoff shared by single-node and cluster reconnects. */
export const reconnectBackoff = (times: number): number => Math.min(50 * 2 ** Math.min(times, 6), 2000);

// The one reading of a Redis URL (also the CLI's) lives in the config core.
export { redisUrlOptions } from '@coordbus/config';

/**
 * Opens an ioredis connection from a `redis://` or `rediss://` URL (user, password and TLS come
 * from the URL). With `cluster: true` it returns an ioredis `Cluster` seeded from the URL; the
 * type stays `Redis` so callers keep working, because `Redis` and `Cluster` share ioredis' command
 * interface (commands, pipeline, multi, defineCommand, pub/sub, status, quit, disconnect). What a
 * caller must respect on a Cluster: `duplicate()` takes other arguments (use {@link duplicateRedis}),
 * a pipeline or MULTI must stay within one slot, and a keyless command (PING, TIME, SCAN) reaches
 * one node only.
 */
export function openRedis(url: string, options: OpenRedisOptions = {}): Redis {
  const nodeOptions = options.redisOptions ?? {};
  if (!options.cluster) return new Redis(url, { retryStrategy: reconnectBackoff, ...nodeOptions });
  const { host, port, options: fromUrl, db } = redisUrlOptions(url);
  if (db !== 0)
    throw new RangeError(`the Redis URL selects database ${db}, but a Redis Cluster only has database 0`);
  // Options a Cluster owns itself: it reconnects and queues at the cluster level, not per node.
  const {
    retryStrategy: _retry,
    enableOfflineQueue: _offline,
    host: _host,
    port: _port,
    path: _path,
    sentinels: _sentinels,
    readOnly: _readOnly,
    himportFieldsets: _himport,
    ...perNode
  } = nodeOptions;
  const cluster = new Cluster([{ host, port }], {
    clusterRetryStrategy: reconnectBackoff,
    // MOVED/ASK during a resharding and CLUSTERDOWN during a failover are retried, not surfaced.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    slotsRefreshTimeout: 2000,
    ...options.clusterOptions,
    redisOptions: { ...fromUrl, ...perNode },
  });
  return cluster as unknown as Redis;
}

/** True when `redis` is an ioredis `Cluster` (see {@link openRedis}). */
export function isCluster(redis: Redis | Cluster): boolean {
  return (redis as { isCluster?: boolean }).isCluster === true;
}

/**
 * A second connection like `redis` (same node or cluster, same credentials), named `name`, for a
 * subscription or a blocking read. Works for a `Redis` and a `Cluster` alike.
 */
export function duplicateRedis(redis: Redis, name?: string): Redis {
  if (isCluster(redis)) {
    const cluster = redis as unknown as Cluster;
    return cluster.duplicate(undefined, {
      redisOptions: { ...cluster.options.redisOptions, connectionName: name },
    }) as unknown as Redis;
  }
  return redis.duplicate(name ? { connectionName: name } : {});
}
