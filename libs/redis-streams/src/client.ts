import { ClientProxy, ReadPacket, WritePacket } from '@nestjs/microservices';
import { EnvelopeCodec, Keyspace, Schema, SchemaKey, Schemas } from '@coordbus/envelope';
import type Redis from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { Registry } from 'prom-client';
import { defaultSchemaOf, resolveStreamRef, StreamRef } from './decorators';
import { RedisStreamsEventsMap, RedisStreamsStatus } from './events';
import { streamMetrics, StreamMetrics } from './metrics';
import type { TrimOption } from './options';
import { openRedis } from './connection';
import { quitWithin } from './server';

/** Options of {@link RedisStreamsClient}: give `url` (the client connects itself) or an existing `redis`. */
export interface RedisStreamsClientOptions {
  url?: string;
  /** Redis Cluster mode for the connection the client opens itself: `url` names one seed node. */
  cluster?: boolean;
  /** Use this connection instead of opening one (the client then never disconnects it). */
  redis?: Redis;
  /** Resolves StreamRefs given to `emit`; default: no namespace. */
  keyspace?: Keyspace;
  codec?: EnvelopeCodec;
  /** Counts `coordbus_stream_published_total` on this registry. */
  registry?: Registry;
  /** Trimming applied to every publish without its own `trim` (e.g. `{ maxLen: 100000 }`). Default none. */
  defaultTrim?: TrimOption;
  /** Extra ioredis options when the client opens its own connection. */
  redisOptions?: Partial<RedisOptions>;
}

/** An `emit` pattern: a StreamRef (its default schema applies) or a StreamRef with an explicit schema. */
export type StreamEmitPattern = StreamRef | { stream: StreamRef; schema?: SchemaKey; trim?: TrimOption };

/**
 * The producer side of the transport: a Nest `ClientProxy` whose `emit(pattern, value)` appends
 * one validated entry with XADD (the observable completes with the entry id once Redis has it),
 * plus a promise API (`publish`, `publishRaw`, `publishMany`) for code outside Nest's proxy
 * idiom. Request-response (`send`) is not supported: streams carry events.
 */
export class RedisStreamsClient extends ClientProxy<RedisStreamsEventsMap, RedisStreamsStatus> {
  readonly codec: EnvelopeCodec;
  readonly keyspace: Keyspace;
  private redis?: Redis;
  private readonly ownsConnection: boolean;
  private readonly metrics?: StreamMetrics;
  private readonly listeners: Array<[string, (...args: unknown[]) => void]> = [];

  constructor(private readonly options: RedisStreamsClientOptions) {
    super();
    if (!options.redis && !(typeof options.url === 'string' && /^rediss?:\/\//.test(options.url))) {
      throw new RangeError(
        `RedisStreamsClient needs a redis:// or rediss:// url or a redis connection (got ${JSON.stringify(options.url)})`,
      );
    }
    this.codec = options.codec ?? new EnvelopeCodec();
    this.keyspace = options.keyspace ?? new Keyspace();
    this.ownsConnection = !options.redis;
    this.redis = options.redis;
    if (options.registry) this.metrics = streamMetrics(options.registry);
    this.initializeSerializer({});
    this.initializeDeserializer({});
  }

  /**
   * Returns the connection, opening it on first use. Commands issued before Redis answers wait in
   * ioredis' offline queue (and fail after its retry limit), so this never blocks.
   */
  async connect(): Promise<Redis> {
    return this.getConnection();
  }

  /** Disconnects an owned connection (an injected one is left alone). */
  async close(): Promise<void> {
    const redis = this.redis;
    if (this.ownsConnection && redis) {
      this.redis = undefined;
      await quitWithin(redis, 1000);
    }
    this._status$.next(RedisStreamsStatus.CLOSED);
  }

  /** The ioredis connection (created on first use). */
  unwrap<T = Redis>(): T {
    return this.getConnection() as T;
  }

  override on<K extends keyof RedisStreamsEventsMap>(event: K, callback: RedisStreamsEventsMap[K]): void {
    this.listeners.push([event, callback as (...args: unknown[]) => void]);
    this.redis?.on(event, callback as (...args: unknown[]) => void);
  }

  /**
   * Validates `value` against `schema`, appends it to `stream` (a full name from the Keyspace)
   * and resolves with the entry id. Throws `InvalidError`/`TooLargeError` before writing anything.
   */
  publish<T>(stream: string, schema: Schema<T> | SchemaKey, value: T, trim?: TrimOption): Promise<string>;
  /** @internal Nest's request-response hook: not supported on streams, answers with an error. */
  publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void;
  publish(...args: unknown[]): Promise<string> | (() => void) {
    if (typeof args[1] === 'function') {
      (args[1] as (p: WritePacket) => void)({
        err: new Error(
          'RedisStreamsClient does not support send() (request-response); use emit() or publish()',
        ),
        isDisposed: true,
      });
      return () => undefined;
    }
    const [stream, schemaOrKey, value, trim] = args as [
      string,
      Schema<unknown> | SchemaKey,
      unknown,
      TrimOption | undefined,
    ];
    try {
      const schema = this.schemaOf(schemaOrKey);
      return this.publishRaw(stream, this.codec.encode(schema, value), trim);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Appends already-encoded fields (`[k1, v1, k2, v2, ...]`) to `stream`; resolves with the entry id. */
  async publishRaw(stream: string, fields: readonly string[], trim?: TrimOption): Promise<string> {
    if (!fields.length || fields.length % 2)
      throw new RangeError('fields must be a non-empty list of name/value pairs');
    const redis = this.getConnection();
    const id = (await redis.xadd(
      stream,
      ...trimArgs(trim ?? this.options.defaultTrim),
      '*',
      ...fields,
    )) as string;
    this.metrics?.published.labels(stream).inc();
    return id;
  }

  /**
   * Validates every value first (nothing is written if one is invalid), then appends them all in
   * one pipeline. Resolves with the ids in order; rejects with the first write error.
   */
  async publishMany<T>(
    stream: string,
    schema: Schema<T> | SchemaKey,
    values: readonly T[],
    trim?: TrimOption,
  ): Promise<string[]> {
    const s = this.schemaOf(schema);
    const encoded = values.map((v) => this.codec.encode(s, v));
    if (!encoded.length) return [];
    const pipeline = this.getConnection().pipeline();
    const trimming = trimArgs(trim ?? this.options.defaultTrim);
    for (const fields of encoded) pipeline.xadd(stream, ...trimming, '*', ...fields);
    const results = (await pipeline.exec()) ?? [];
    const ids: string[] = [];
    for (const [err, id] of results) {
      if (err) throw err;
      ids.push(id as string);
    }
    this.metrics?.published.labels(stream).inc(ids.length);
    return ids;
  }

  /** Resolves an emit pattern to the stream name, schema and trimming it means. */
  resolvePattern(pattern: StreamEmitPattern): { stream: string; schema: Schema<unknown>; trim?: TrimOption } {
    const ref = typeof pattern === 'string' ? pattern : pattern?.stream;
    const key = (typeof pattern === 'object' && pattern.schema) || defaultSchemaOf(ref);
    return {
      stream: resolveStreamRef(this.keyspace, ref),
      schema: this.schemaOf(key),
      trim: typeof pattern === 'object' ? pattern.trim : undefined,
    };
  }

  protected async dispatchEvent<T = string>(packet: ReadPacket): Promise<T> {
    const { stream, schema, trim } = this.resolvePattern(packet.pattern as StreamEmitPattern);
    return (await this.publish(stream, schema, packet.data, trim)) as T;
  }

  private schemaOf<T>(schema: Schema<T> | SchemaKey): Schema<T> {
    if (typeof schema === 'string') {
      const found = (Schemas as Record<string, Schema<unknown>>)[schema];
      if (!found) throw new RangeError(`unknown schema ${JSON.stringify(schema)}`);
      return found as Schema<T>;
    }
    return schema;
  }

  private getConnection(): Redis {
    if (!this.redis) {
      const redis = openRedis(this.options.url as string, {
        cluster: this.options.cluster,
        redisOptions: { connectionName: 'coordbus-producer', ...this.options.redisOptions },
      });
      redis.on('connect', () => this._status$.next(RedisStreamsStatus.CONNECTED));
      redis.on('reconnecting', () => this._status$.next(RedisStreamsStatus.RECONNECTING));
      redis.on('end', () => this._status$.next(RedisStreamsStatus.DISCONNECTED));
      // Without a listener ioredis reports connection errors as unhandled 'error' events.
      redis.on('error', () => undefined);
      for (const [event, cb] of this.listeners) redis.on(event, cb);
      this._status$.next(RedisStreamsStatus.CONNECTING);
      this.redis = redis;
    }
    return this.redis;
  }
}

function trimArgs(trim: TrimOption | undefined): Array<string | number> {
  if (!trim) return [];
  if (!Number.isInteger(trim.maxLen) || trim.maxLen < 0)
    throw new RangeError(`trim.maxLen must be an integer >= 0 (got ${trim.maxLen})`);
  return trim.approximate === false ? ['MAXLEN', trim.maxLen] : ['MAXLEN', '~', trim.maxLen];
}
