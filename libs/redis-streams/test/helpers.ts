import { INestMicroservice, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EnvelopeCodec, Keyspace, Schema, SchemaKey, Schemas } from '@coordbus/envelope';
import { cleanupNamespace, testKeyspace, testRedisUrl } from '@coordbus/testing';
import Redis from 'ioredis';
import { Registry } from 'prom-client';
import { RedisStreamsServer, RedisStreamsServerOptions, StreamsLogger } from '@coordbus/redis-streams';

/** Keeps test output quiet but lets a test look at what was logged. */
export class MemoryLogger implements StreamsLogger {
  readonly lines: Array<{ level: string; message: unknown }> = [];
  log(message: unknown): void {
    this.lines.push({ level: 'log', message });
  }
  warn(message: unknown): void {
    this.lines.push({ level: 'warn', message });
  }
  error(message: unknown): void {
    this.lines.push({ level: 'error', message });
  }
}

/**
 * Writes test entries the way every producer does: the codec's fields, one XADD (production
 * producers do it inside their Lua script or MULTI; a test has no state to commit with them).
 */
export class TestProducer {
  private readonly codec = new EnvelopeCodec();
  constructor(private readonly redis: Redis) {}

  async publishRaw(stream: string, fields: readonly string[], maxLen?: number): Promise<string> {
    const trim = maxLen === undefined ? [] : ['MAXLEN', String(maxLen)];
    return (await this.redis.xadd(stream, ...trim, '*', ...fields)) as string;
  }

  publish<T>(stream: string, schema: SchemaKey, value: T): Promise<string> {
    return this.publishRaw(stream, this.codec.encode(Schemas[schema] as unknown as Schema<T>, value));
  }

  async publishMany<T>(stream: string, schema: SchemaKey, values: readonly T[]): Promise<string[]> {
    const ids: string[] = [];
    for (const v of values) ids.push(await this.publish(stream, schema, v));
    return ids;
  }
}

/** One test's world: its own namespace, a plain Redis connection, a producer, and the servers it started. */
export class StreamsFixture {
  readonly keyspace: Keyspace;
  readonly redis: Redis;
  readonly client: TestProducer;
  readonly registry = new Registry();
  private readonly apps: INestMicroservice[] = [];
  private readonly servers: RedisStreamsServer[] = [];

  constructor(
    label: string,
    readonly url = testRedisUrl(),
  ) {
    this.keyspace = testKeyspace(label);
    this.redis = new Redis(url);
    this.client = new TestProducer(this.redis);
  }

  server(options: Partial<RedisStreamsServerOptions> = {}): RedisStreamsServer {
    const server = new RedisStreamsServer({
      url: this.url,
      keyspace: this.keyspace,
      registry: this.registry,
      logger: new MemoryLogger(),
      blockMs: 200,
      retryDelayMs: 10,
      ...options,
    });
    this.servers.push(server);
    return server;
  }

  /** Starts `module` as a Nest microservice on a new server (how services run the transport). */
  async nest(
    module: Type,
    options: Partial<RedisStreamsServerOptions> = {},
  ): Promise<{ app: INestMicroservice; server: RedisStreamsServer }> {
    const server = this.server(options);
    const app = await NestFactory.createMicroservice(module, { strategy: server, logger: false });
    await app.listen();
    this.apps.push(app);
    return { app, server };
  }

  async dispose(): Promise<void> {
    for (const app of this.apps) await app.close().catch(() => undefined);
    for (const server of this.servers) await server.close().catch(() => undefined);
    await cleanupNamespace(this.redis, this.keyspace).catch(() => undefined);
    this.redis.disconnect();
  }
}

/** A deferred promise a test resolves by hand. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
