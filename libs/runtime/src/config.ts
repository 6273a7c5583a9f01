import { hostname } from 'node:os';
import {
  EnvReader as CoreEnvReader,
  LogLevel,
  readSecret,
  SecretVar,
  SHARED_VARS as V,
} from '@coordbus/config';
import { Keyspace } from '@coordbus/envelope';
import { Secret } from './secret';

// The config core lives in @coordbus/config (dependency-free, also in the `coord` bundle); these
// names stay importable from the runtime, where services have always found them.
export { ConfigError, LOG_LEVELS, type LogLevel, parseDuration, readVar } from '@coordbus/config';

/** The config core's reader, plus credentials (which the services alone read). */
export class EnvReader extends CoreEnvReader {
  /**
   * A defined credential (variables.ts) from `NAME` or from the file named by `NAME_FILE` (a
   * mounted secret; one trailing newline is ignored). Giving both, an unreadable file or a value
   * shorter than its `minLength` is a problem; the value itself never appears in a problem message.
   */
  secret(v: SecretVar): Secret | undefined {
    const read = readSecret(this.env, v);
    if (!read.ok) {
      this.problem(read.problem);
      return undefined;
    }
    return read.value === undefined ? undefined : new Secret(read.value);
  }
}

/** What every coordbus service reads from its environment. */
export interface BaseConfig {
  service: string;
  /** `REDIS_URL` (default redis://127.0.0.1:6379; rediss:// for TLS; user:password@ for ACLs). */
  redisUrl: string;
  /**
   * `REDIS_CLUSTER` (default false): `REDIS_URL` names one seed node of a Redis Cluster and every
   * connection is an ioredis `Cluster` (see `createRedis`).
   */
  redisCluster: boolean;
  /** `COORDBUS_NAMESPACE`: prefix of every key (default empty). */
  namespace: string;
  keyspace: Keyspace;
  /** `HTTP_PORT`: /healthz, /readyz, /metrics (0 picks a free port). */
  httpPort: number;
  /**
   * `HTTP_HOST` (default 127.0.0.1: reachable from this machine only). Containers set 0.0.0.0,
   * where the network is the boundary; then the archivist's API needs `COORDBUS_API_TOKEN`.
   */
  httpHost: string;
  logLevel: LogLevel;
  /** `COORDBUS_CONSUMER`: consumer name in every group (default `<hostname>-<pid>`, stable per replica). */
  consumer: string;
  /** `COORDBUS_MAX_ENTRY_BYTES`: largest stream entry accepted (default 64 KiB). */
  maxEntryBytes: number;
  /** `SHUTDOWN_TIMEOUT_MS`: how long a graceful stop may take before the process gives up (default 20 s). */
  shutdownTimeoutMs: number;
  /** Consumer tuning shared by every stream loop of the service (`STREAM_*`). */
  streams: {
    /** `STREAM_BATCH_SIZE`: XREADGROUP COUNT (default 100). */
    batchSize: number;
    /** `STREAM_CONCURRENCY`: handlers in flight per stream loop (default 64). */
    concurrency: number;
    /** `STREAM_MAX_DELIVERIES`: deliveries before an entry is dead-lettered (default 5). */
    maxDeliveries: number;
    /** `STREAM_RECLAIM_IDLE_MS`: idle time before another replica takes over a pending entry (default 30 s). */
    reclaimIdleMs: number;
    /** `STREAM_CONSUMER_IDLE_REMOVE`: other consumers idle this long with nothing pending are removed (default 1 h; 0 = never). */
    consumerIdleRemoveMs: number;
  };
}

/** Reads the variables every service shares. Call `env.finish()` after reading your own. */
export function baseConfig(
  env: EnvReader,
  options: { service: string; defaultHttpPort: number },
): BaseConfig {
  const namespace = env.get(V.COORDBUS_NAMESPACE);
  return {
    service: options.service,
    redisUrl: env.get(V.REDIS_URL),
    redisCluster: env.get(V.REDIS_CLUSTER),
    namespace,
    keyspace: new Keyspace(namespace),
    httpPort: env.get(V.HTTP_PORT, options.defaultHttpPort),
    httpHost: env.get(V.HTTP_HOST),
    logLevel: env.get(V.LOG_LEVEL),
    consumer: env.get(V.COORDBUS_CONSUMER, `${hostname()}-${process.pid}`),
    maxEntryBytes: env.get(V.COORDBUS_MAX_ENTRY_BYTES),
    shutdownTimeoutMs: env.get(V.SHUTDOWN_TIMEOUT_MS),
    streams: {
      batchSize: env.get(V.STREAM_BATCH_SIZE),
      concurrency: env.get(V.STREAM_CONCURRENCY),
      maxDeliveries: env.get(V.STREAM_MAX_DELIVERIES),
      reclaimIdleMs: env.get(V.STREAM_RECLAIM_IDLE_MS),
      consumerIdleRemoveMs: env.get(V.STREAM_CONSUMER_IDLE_REMOVE),
    },
  };
}
