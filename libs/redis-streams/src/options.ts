import type { EnvelopeCodec, Keyspace } from '@coordbus/envelope';
import type { RedisOptions } from 'ioredis';
import type { Registry } from 'prom-client';

/** The logger the transport writes to: a Nest `LoggerService` (e.g. the runtime's pino bridge) fits. */
export interface StreamsLogger {
  log(message: unknown, ...rest: unknown[]): void;
  warn(message: unknown, ...rest: unknown[]): void;
  error(message: unknown, ...rest: unknown[]): void;
}

/** What a handler failure or a transport error is reported with (one place for every error). */
export interface StreamErrorInfo {
  stream: string;
  group: string;
  consumer: string;
  /** The entry (or entries, for a batch handler) being handled, when there is one. */
  ids: string[];
  /**
   * What happens next: redelivered later (counted), dead-lettered now, kept uncounted while a
   * dependency is down (`outage`: a retryable error), or a transport-level error.
   */
  outcome: 'retry' | 'dead-letter' | 'outage' | 'transport';
}

/** Options of {@link RedisStreamsServer}. Only `url` and `keyspace` are required. */
export interface RedisStreamsServerOptions {
  /** `redis://` or `rediss://` URL; ACL user and password go in the URL. */
  url: string;
  /** Redis Cluster mode: `url` names one seed node; every connection is an ioredis `Cluster`. Default false. */
  cluster?: boolean;
  /** Resolves each handler's `StreamRef` to a stream name (so `COORDBUS_NAMESPACE` applies). */
  keyspace: Keyspace;
  /** Consumer name inside every group; stable per replica. Default `<hostname>-<pid>`. */
  consumer?: string;
  /** XREADGROUP COUNT: most entries one read returns (and the size of a batch handler's batch). Default 100. */
  batchSize?: number;
  /** XREADGROUP BLOCK in ms: how long one read waits for new entries. Default 2000. */
  blockMs?: number;
  /** Most single-entry handlers running at once per stream loop; reads never fetch more than the free slots. Default 64. */
  concurrency?: number;
  /** Deliveries before an entry that keeps failing is dead-lettered. Default 5. */
  maxDeliveries?: number;
  /** An entry pending this long (ms) on any consumer is reclaimed with XAUTOCLAIM. Default 30000. */
  reclaimIdleMs?: number;
  /** How often (ms) each loop looks for stale entries to reclaim. Default `max(250, reclaimIdleMs / 2)`. */
  reclaimIntervalMs?: number;
  /** First delay (ms) before a failed entry is redelivered to this consumer; doubles per delivery. Default 250. */
  retryDelayMs?: number;
  /** Longest delay (ms) acks wait to be batched into one XACK; 0 batches within one event-loop turn. Default 0. */
  ackFlushMs?: number;
  /** Acks buffered before an XACK is sent at once. Default 256. */
  ackBatchSize?: number;
  /** Approximate MAXLEN of each dead-letter stream. Default 100000. */
  deadLetterMaxLen?: number;
  /**
   * Other consumers of each group this server reads that own no pending entry and have been idle
   * this long (ms) are removed (a replica that is gone leaves its consumer behind); 0 never
   * removes any. Default 3600000 (1 h).
   */
  consumerIdleRemoveMs?: number;
  /** Time between idle-consumer passes (ms), jittered by ±20%. Default 60000. */
  consumerSweepIntervalMs?: number;
  /** How long `listen` waits for the consumer groups before reporting started anyway (the loops keep retrying). Default 5000. */
  startTimeoutMs?: number;
  /** How long `close` waits for in-flight handlers before disconnecting. Default 30000. */
  closeTimeoutMs?: number;
  /** Decodes and validates entries of handlers that name a `schema`. Default `new EnvelopeCodec()`. */
  codec?: EnvelopeCodec;
  /** prom-client registry for the `coordbus_stream_*` metrics. Default: a private registry. */
  registry?: Registry;
  /** Where the transport logs. Default: Nest's `Logger`. */
  logger?: StreamsLogger;
  /** Called once for every handler failure and transport error (after it is logged). Must not throw. */
  onError?: (error: unknown, info: StreamErrorInfo) => void;
  /** Extra ioredis options for every connection the server opens. */
  redisOptions?: Partial<RedisOptions>;
}

export type ResolvedServerOptions = Required<
  Omit<
    RedisStreamsServerOptions,
    'registry' | 'logger' | 'onError' | 'redisOptions' | 'codec' | 'reclaimIntervalMs'
  >
> & {
  reclaimIntervalMs: number;
  codec: EnvelopeCodec;
  registry?: Registry;
  logger?: StreamsLogger;
  onError?: RedisStreamsServerOptions['onError'];
  redisOptions: Partial<RedisOptions>;
};

function positiveInt(name: string, value: number | undefined, fallback: number, min = 1): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min)
    throw new RangeError(`${name} must be an integer >= ${min} (got ${String(value)})`);
  return v;
}

/** Applies defaults and checks ranges; throws a RangeError naming the bad option. */
export function resolveServerOptions(
  options: RedisStreamsServerOptions,
  defaults: { consumer: string; codec: EnvelopeCodec },
): ResolvedServerOptions {
  if (!options || typeof options.url !== 'string' || !/^rediss?:\/\//.test(options.url)) {
    throw new RangeError(`url must be a redis:// or rediss:// URL (got ${JSON.stringify(options?.url)})`);
  }
  if (!options.keyspace) throw new RangeError('keyspace is required');
  const reclaimIdleMs = positiveInt('reclaimIdleMs', options.reclaimIdleMs, 30_000);
  const consumer = options.consumer ?? defaults.consumer;
  if (!consumer) throw new RangeError('consumer must not be empty');
  return {
    url: options.url,
    cluster: !!options.cluster,
    keyspace: options.keyspace,
    consumer,
    batchSize: positiveInt('batchSize', options.batchSize, 100),
    blockMs: positiveInt('blockMs', options.blockMs, 2000),
    concurrency: positiveInt('concurrency', options.concurrency, 64),
    maxDeliveries: positiveInt('maxDeliveries', options.maxDeliveries, 5),
    reclaimIdleMs,
    reclaimIntervalMs: positiveInt(
      'reclaimIntervalMs',
      options.reclaimIntervalMs,
      Math.max(250, Math.floor(reclaimIdleMs / 2)),
    ),
    retryDelayMs: positiveInt('retryDelayMs', options.retryDelayMs, 250, 0),
    ackFlushMs: positiveInt('ackFlushMs', options.ackFlushMs, 0, 0),
    ackBatchSize: positiveInt('ackBatchSize', options.ackBatchSize, 256),
    deadLetterMaxLen: positiveInt('deadLetterMaxLen', options.deadLetterMaxLen, 100_000),
    consumerIdleRemoveMs: positiveInt('consumerIdleRemoveMs', options.consumerIdleRemoveMs, 3_600_000, 0),
    consumerSweepIntervalMs: positiveInt('consumerSweepIntervalMs', options.consumerSweepIntervalMs, 60_000),
    startTimeoutMs: positiveInt('startTimeoutMs', options.startTimeoutMs, 5000, 0),
    closeTimeoutMs: positiveInt('closeTimeoutMs', options.closeTimeoutMs, 30_000, 0),
    codec: options.codec ?? defaults.codec,
    registry: options.registry,
    logger: options.logger,
    onError: options.onError,
    redisOptions: options.redisOptions ?? {},
  };
}
