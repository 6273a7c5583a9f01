import { applyDecorators, UseFilters } from '@nestjs/common';
import { EventPattern } from '@nestjs/microservices';
import { DEAD_LETTER_SUFFIX, Keyspace, SchemaKey, Schemas } from '@coordbus/envelope';
import { StreamExceptionFilter } from './exception-filter';

/** The Keyspace getters naming a consumer-group stream. */
export const STREAM_NAMES = [
  'coordIngest',
  'coordEvents',
  'sentinelObservations',
  'telemetryEvents',
  'jobEvents',
] as const;
export type StreamName = (typeof STREAM_NAMES)[number];

/**
 * A stream as handlers and producers name it: the name of a {@link Keyspace} stream getter,
 * optionally with `:dead` for its dead-letter stream. Resolved through the keyspace at runtime,
 * so `COORDBUS_NAMESPACE` applies.
 */
export type StreamRef = StreamName | `${StreamName}${typeof DEAD_LETTER_SUFFIX}`;

/** The schema each stream carries (used by `client.emit(streamRef, value)` when no schema is given). */
export const STREAM_SCHEMAS: Readonly<Record<StreamName, SchemaKey>> = {
  coordIngest: 'coordOp',
  coordEvents: 'coordEvent',
  sentinelObservations: 'observation',
  telemetryEvents: 'telemetry',
  jobEvents: 'jobEvent',
};

/** Splits a StreamRef into its base stream and whether it names the dead-letter stream; throws on anything else. */
export function parseStreamRef(ref: string): { name: StreamName; dead: boolean } {
  const dead = typeof ref === 'string' && ref.endsWith(DEAD_LETTER_SUFFIX);
  const name = dead ? ref.slice(0, -DEAD_LETTER_SUFFIX.length) : ref;
  if (!(STREAM_NAMES as readonly string[]).includes(name)) {
    throw new RangeError(
      `unknown stream ${JSON.stringify(ref)}: expected one of ${STREAM_NAMES.join(', ')} (optionally with ${DEAD_LETTER_SUFFIX})`,
    );
  }
  return { name: name as StreamName, dead };
}

/** The full stream name of `ref` in `keyspace`. */
export function resolveStreamRef(keyspace: Keyspace, ref: StreamRef | string): string {
  const { name, dead } = parseStreamRef(ref);
  const stream = keyspace[name];
  return dead ? keyspace.deadLetter(stream) : stream;
}

/** The schema a StreamRef carries by default (`deadLetter` for dead-letter streams). */
export function defaultSchemaOf(ref: StreamRef | string): SchemaKey {
  const { name, dead } = parseStreamRef(ref);
  return dead ? 'deadLetter' : STREAM_SCHEMAS[name];
}

export interface StreamHandlerOptions {
  /** The stream to consume, e.g. `'coordIngest'` or `'coordIngest:dead'`. */
  stream: StreamRef;
  /** The consumer group (use `GROUPS.x` from `@coordbus/envelope`). */
  group: string;
  /**
   * Decode and validate every entry with this schema; the handler then receives the DTO, and an
   * entry that fails goes to the dead-letter stream at once. Without it the handler receives the
   * raw field record (`Record<string, string>`).
   */
  schema?: SchemaKey;
}

export interface StreamBatchHandlerOptions extends StreamHandlerOptions {
  /**
   * Batches of this stream whose handlers may run at once (1 to 16). Default 1: one at a time,
   * in stream order. A handler that hands its batch to something that works on its own (a
   * database, a worker thread) takes 2, so the next batch is prepared while the previous one
   * commits; each batch is then acked, retried or dead-lettered on its own, and batches may
   * settle out of order.
   */
  concurrency?: number;
  /**
   * After a read that came back with fewer entries than a batch holds (the stream is caught up),
   * wait this long (ms, 0 to 1000) before the next read, so a trickle of entries goes into fewer,
   * larger batches (one database transaction each) for at most this much more latency.
   * Default 0: read again at once.
   */
  lingerMs?: number;
}
export interface StreamHandlerMetadata extends StreamHandlerOptions {
  batch: boolean;
  /** Batches run at once (batch handlers only); 1 when absent. */
  concurrency?: number;
  /** Wait before the read after a short one (batch handlers only); 0 when absent. */
  lingerMs?: number;
}

/** Longest `lingerMs` a batch handler may take. */
export const MAX_BATCH_LINGER_MS = 1000;

/** Most batches one batch handler may run at once. */
export const MAX_BATCH_CONCURRENCY = 16;

/** Key of the pattern extras the decorators attach. */
export const STREAM_HANDLER_EXTRAS = 'coordbusRedisStreams';

/** Throws a RangeError naming the option at fault; also used by `addStreamHandler`. */
export function checkStreamHandlerOptions(options: StreamBatchHandlerOptions, decorator: string): void {
  parseStreamRef(options?.stream);
  if (typeof options.group !== 'string' || !/^[A-Za-z0-9_.:-]+$/.test(options.group)) {
    throw new RangeError(
      `${decorator}: group must be a non-empty name of letters, digits, '_', '.', ':' or '-'`,
    );
  }
  if (options.schema !== undefined && !(options.schema in Schemas)) {
    throw new RangeError(`${decorator}: unknown schema ${JSON.stringify(options.schema)}`);
  }
  const { concurrency, lingerMs } = options as StreamBatchHandlerOptions;
  if (
    lingerMs !== undefined &&
    !(Number.isInteger(lingerMs) && lingerMs >= 0 && lingerMs <= MAX_BATCH_LINGER_MS)
  ) {
    throw new RangeError(
      `${decorator}: lingerMs must be an integer from 0 to ${MAX_BATCH_LINGER_MS} (got ${String(lingerMs)})`,
    );
  }
  if (
    concurrency !== undefined &&
    !(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= MAX_BATCH_CONCURRENCY)
  ) {
    throw new RangeError(
      `${decorator}: concurrency must be an integer from 1 to ${MAX_BATCH_CONCURRENCY} (got ${String(concurrency)})`,
    );
  }
}

/** The Nest event pattern of a stream handler (unique per stream and group). */
export function streamPattern(options: Pick<StreamHandlerOptions, 'stream' | 'group'>): string {
  return `redis-streams:${options.stream}#${options.group}`;
}

/**
 * Marks a controller method as the handler of every entry of `stream` read by consumer `group`.
 * The method takes `(@Payload() data, @Ctx() ctx: RedisStreamsContext)`; the entry is acked when
 * the method's promise resolves, redelivered when it rejects (up to `maxDeliveries`, then
 * dead-lettered with the error as reason). An `InvalidError`, `SchemaMismatchError` or
 * `TooLargeError` thrown by the handler dead-letters at once (retrying bad input cannot help).
 */
export function StreamHandler(options: StreamHandlerOptions): MethodDecorator {
  checkStreamHandlerOptions(options, 'StreamHandler');
  if ((options as StreamBatchHandlerOptions).concurrency !== undefined) {
    throw new RangeError(
      'StreamHandler: concurrency is a batch handler option; single-entry handlers share the server option `concurrency`',
    );
  }
  if ((options as StreamBatchHandlerOptions).lingerMs !== undefined) {
    throw new RangeError('StreamHandler: lingerMs is a batch handler option (use @StreamBatchHandler)');
  }
  return streamDecorator({ ...options, batch: false });
}

/** One entry of a batch given to a `@StreamBatchHandler`. */
export interface StreamBatchEntry<T = Record<string, string>> {
  id: string;
  data: T;
  deliveryCount: number;
  /**
   * With a schema: the entry's `data` text when `data` holds exactly what it says, so a handler
   * that stores JSON can keep it instead of serialising `data` again (see `DecodeInfo.text` of
   * `@coordbus/envelope`). Undefined otherwise.
   */
  text?: string;
}

/** What a `@StreamBatchHandler` receives as its payload. */
export interface StreamBatch<T = Record<string, string>> {
  stream: string;
  group: string;
  entries: StreamBatchEntry<T>[];
}

/**
 * Rejection of a `@StreamBatchHandler` that handled all but some entries: the entries not named
 * are acked, each named one is failed with its own error (a permanent one, like InvalidError, is
 * dead-lettered at once with that reason; any other is retried as usual). So one bad entry never
 * takes its batch down.
 */
export class PartialBatchError extends Error {
  constructor(readonly failures: ReadonlyArray<{ id: string; error: unknown }>) {
    super(
      `${failures.length} entr${failures.length === 1 ? 'y' : 'ies'} of the batch failed: ${failures
        .slice(0, 3)
        .map((f) => `${f.id}: ${(f.error as Error)?.message ?? String(f.error)}`)
        .join('; ')}`,
    );
    this.name = 'PartialBatchError';
  }
}

/**
 * Like {@link StreamHandler}, but the method receives up to `batchSize` entries at once as a
 * {@link StreamBatch} (invalid entries already dead-lettered and acked). All entries are acked
 * together when the promise resolves; if it rejects, all are redelivered (and those past
 * `maxDeliveries` dead-lettered one by one) — except with a {@link PartialBatchError}, which
 * fails only the entries it names. Batches of one stream run one at a time unless `concurrency`
 * allows more.
 */
export function StreamBatchHandler(options: StreamBatchHandlerOptions): MethodDecorator {
  checkStreamHandlerOptions(options, 'StreamBatchHandler');
  return streamDecorator({ ...options, batch: true });
}

/** The Nest event pattern plus the transport's exception filter (the handler's errors reach the loop as thrown). */
function streamDecorator(meta: StreamHandlerMetadata): MethodDecorator {
  return applyDecorators(
    EventPattern(streamPattern(meta), { [STREAM_HANDLER_EXTRAS]: meta }) as MethodDecorator,
    UseFilters(new StreamExceptionFilter()),
  );
}
