import { hostname } from 'node:os';
import { EnvelopeCodec, fieldsToRecord, Schema, Schemas } from '@coordbus/envelope';
import { CustomTransportStrategy, MessageHandler, Server } from '@nestjs/microservices';
import { Logger } from '@nestjs/common';
import type Redis from 'ioredis';
import { isObservable, lastValueFrom } from 'rxjs';
import { openRedis } from './connection';
import { ConsumerGroup } from './consumer-group';
import { IdleConsumerSweeper } from './consumer-sweep';
import { RedisStreamsContext } from './context';
import {
  checkStreamHandlerOptions,
  resolveStreamRef,
  STREAM_HANDLER_EXTRAS,
  StreamBatchHandlerOptions,
  StreamHandlerMetadata,
  streamPattern,
} from './decorators';
import { RedisStreamsEvent, RedisStreamsEventsMap, RedisStreamsStatus } from './events';
import { LoopDefinition, LoopHost, StreamLoop } from './loop';
import { GroupGauge, streamMetrics, StreamMetrics } from './metrics';
import {
  RedisStreamsServerOptions,
  ResolvedServerOptions,
  resolveServerOptions,
  StreamErrorInfo,
  StreamsLogger,
} from './options';

/** Nest transport id of the Redis Streams transport. */
export const REDIS_STREAMS_TRANSPORT = Symbol('REDIS_STREAMS');

type Listener = (...args: unknown[]) => void;

/**
 * The Redis Streams transport of coordbus: a Nest `CustomTransportStrategy` that consumes every
 * stream named by a `@StreamHandler` / `@StreamBatchHandler` through its consumer group.
 *
 * Per (stream, group) one loop reads with XREADGROUP COUNT/BLOCK on its own connection, never
 * more than its free handler slots; first its own pending entries (id `0`), then new ones (`>`).
 * An entry is acked (batched XACK) only after its handler resolves; a failure is redelivered
 * with backoff and, after `maxDeliveries`, moved to `<stream>:dead` and acked in one MULTI;
 * an entry that fails its schema is dead-lettered at once. Entries idle on a dead consumer are
 * reclaimed with XAUTOCLAIM. The loops survive connection loss, a Redis restart and a deleted
 * group (NOGROUP: recreated). `close()` stops reading, finishes in-flight handlers and flushes acks.
 *
 * Groups are created at id `0` (not `$`), so entries written before a group existed are
 * consumed too: a producer that starts first loses nothing.
 */
export class RedisStreamsServer
  extends Server<RedisStreamsEventsMap, RedisStreamsStatus>
  implements CustomTransportStrategy, LoopHost
{
  override transportId = REDIS_STREAMS_TRANSPORT;
  /** We await each handler (to ack after it), so its failure must reach us, not Nest's logger. */
  override readonly propagatesEventHandlerErrors = true;
  readonly options: ResolvedServerOptions;
  readonly metrics: StreamMetrics;
  protected command?: Redis;
  protected loops: StreamLoop[] = [];
  protected readonly out: StreamsLogger;
  private closed = false;
  private listening = false;
  private readonly listeners: Array<[string, Listener]> = [];
  private removeGaugeSource?: () => void;
  private sweeper?: IdleConsumerSweeper;
  private readonly defaultStartHook = this.onProcessingStartHook;

  constructor(options: RedisStreamsServerOptions) {
    super();
    this.options = resolveServerOptions(options, {
      consumer: `${hostname()}-${process.pid}`,
      codec: new EnvelopeCodec(),
    });
    this.metrics = streamMetrics(this.options.registry);
    this.out = this.options.logger ?? new Logger(RedisStreamsServer.name);
    this.initializeSerializer({});
    this.initializeDeserializer({});
  }

  /** The consumer name this replica uses in every group. */
  get consumer(): string {
    return this.options.consumer;
  }

  /**
   * Registers a handler without Nest's decorators (for a plain loop outside a Nest app). `fn`
   * receives what a decorated handler would; call before `listen`.
   */
  addStreamHandler(
    options: StreamBatchHandlerOptions & { batch?: boolean },
    fn: (data: never, ctx: RedisStreamsContext) => unknown,
  ): void {
    checkStreamHandlerOptions(options, options.batch ? 'addStreamHandler (batch)' : 'addStreamHandler');
    if (!options.batch && (options.concurrency !== undefined || options.lingerMs !== undefined)) {
      throw new RangeError(
        'addStreamHandler: concurrency and lingerMs apply to batch handlers only (batch: true)',
      );
    }
    const meta: StreamHandlerMetadata = {
      stream: options.stream,
      group: options.group,
      schema: options.schema,
      batch: !!options.batch,
      concurrency: options.concurrency,
      lingerMs: options.lingerMs,
    };
    resolveStreamRef(this.options.keyspace, meta.stream);
    this.addHandler(streamPattern(meta), fn as unknown as MessageHandler, true, {
      [STREAM_HANDLER_EXTRAS]: meta,
    });
  }

  /**
   * Starts one loop per stream handler. Calls back once every consumer group exists (or after
   * `startTimeoutMs` with Redis still unreachable: the loops keep retrying and `isReady()` stays
   * false); calls back with an error for a bad handler declaration.
   */
  async listen(callback: (error?: unknown, ...info: unknown[]) => void): Promise<void> {
    try {
      this.closed = false;
      const defs = this.collectHandlers();
      this._status$.next(RedisStreamsStatus.CONNECTING);
      this.command = this.createClient('command');
      this.command.on('ready', () => this._status$.next(RedisStreamsStatus.CONNECTED));
      this.command.on('reconnecting', () => this._status$.next(RedisStreamsStatus.RECONNECTING));
      this.command.on('end', () => {
        if (!this.closed) this._status$.next(RedisStreamsStatus.DISCONNECTED);
      });
      const groups: ConsumerGroup[] = [];
      this.loops = defs.map((def) => {
        const conn = this.createClient(`read:${def.ref}:${def.group}`);
        const group = this.createConsumerGroup(def);
        groups.push(group);
        return new StreamLoop(this, def, conn, group);
      });
      this.removeGaugeSource = this.metrics.addGaugeSource(() => this.readGroupGauges());
      for (const loop of this.loops) loop.start();
      this.sweeper = this.createIdleConsumerSweeper(groups);
      this.sweeper.start();
      this.listening = true;
      const ready = await this.waitUntil(
        () => this.loops.every((l) => l.groupReady),
        this.options.startTimeoutMs,
      );
      if (!ready) {
        this.out.warn({
          msg: 'consumer groups not ready yet (is Redis reachable?); the loops keep retrying',
          url: redactUrl(this.options.url),
          timeoutMs: this.options.startTimeoutMs,
        });
      }
      this.out.log({
        msg: 'redis streams transport listening',
        consumer: this.consumer,
        loops: this.loops.map((l) => `${l.stream}#${l.groupName}${l.def.batch ? ' (batch)' : ''}`),
      });
      callback();
    } catch (err) {
      callback(err);
    }
  }

  /** True when connected and every consumer group exists (for `/readyz`). */
  isReady(): boolean {
    return this.readiness() === true;
  }

  /** `true`, or what is not ready: each stream and group that is not, with the reason (`/readyz`). */
  readiness(): true | string {
    if (!this.listening || this.closed) return 'not listening';
    if (this.command?.status !== 'ready') return `command connection ${this.command?.status ?? 'not open'}`;
    const waiting = this.loops.flatMap((l) => {
      const why = l.notReadyReason();
      return why === undefined ? [] : [`${l.stream} (group ${l.groupName}): ${why}`];
    });
    return waiting.length ? waiting.join('; ') : true;
  }

  /**
   * Graceful stop: flags itself closed, disconnects the blocking connections (breaking their
   * reads), waits for in-flight handlers (up to `closeTimeoutMs`), flushes acks, disconnects.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listening = false;
    this.removeGaugeSource?.();
    await this.sweeper?.stop();
    await Promise.all(this.loops.map((l) => l.close(this.options.closeTimeoutMs)));
    const command = this.command;
    this.command = undefined;
    if (command) await quitWithin(command, 1000);
    this._status$.next(RedisStreamsStatus.CLOSED);
  }

  on<K extends keyof RedisStreamsEventsMap>(event: K, callback: RedisStreamsEventsMap[K]): void {
    this.listeners.push([event, callback as Listener]);
    this.command?.on(event, callback as Listener);
    for (const loop of this.loops) (loop.conn as Redis).on(event, callback as Listener);
  }

  /** `[commandConnection, ...blockingConnections]` */
  unwrap<T = Redis[]>(): T {
    if (!this.command) throw new Error('RedisStreamsServer is not listening: call listen() first');
    return [this.command, ...this.loops.map((l) => l.conn as Redis)] as T;
  }

  // ---- I/O: small overridable methods --------------------------------------------------------

  /** Opens a connection; `role` is `command` or `read:<stream>:<group>` (one blocking connection per loop). */
  protected createClient(role: string): Redis {
    const reader = role.startsWith('read:');
    // In cluster mode each loop still gets a Cluster of its own: a blocked XREADGROUP holds its
    // node connection, so it must not share one with acks or another stream's reads.
    const redis = openRedis(this.options.url, {
      cluster: this.options.cluster,
      redisOptions: {
        connectionName: `coordbus:${this.consumer}:${role}`.replace(/\s/g, '_'),
        // A blocking read lost with its connection must fail (the loop then re-reads its pending
        // list) rather than be resent silently; commands on the command connection may be resent.
        autoResendUnfulfilledCommands: !reader,
        maxRetriesPerRequest: reader ? 1 : 3,
        ...this.options.redisOptions,
      },
    });
    let reported = false;
    redis.on('error', (err: Error) => {
      if (reported || this.closed) return;
      reported = true;
      this.out.warn({ msg: 'redis connection error; reconnecting', role, err: err.message });
    });
    redis.on('ready', () => (reported = false));
    for (const [event, cb] of this.listeners) redis.on(event, cb);
    if (!this.listeners.some(([e]) => e === RedisStreamsEvent.ERROR))
      redis.on(RedisStreamsEvent.ERROR, () => undefined);
    return redis;
  }

  /**
   * The consumer group of one handler, on the command connection (the loop reads on its own
   * blocking connection). Dead letters are logged here; override to change the group's I/O.
   */
  protected createConsumerGroup(def: LoopDefinition): ConsumerGroup {
    const command = this.command;
    if (!command) throw new Error('RedisStreamsServer is not listening');
    return new ConsumerGroup({
      redis: command,
      stream: def.stream,
      group: def.group,
      consumer: this.consumer,
      deadLetterMaxLen: this.options.deadLetterMaxLen,
      codec: this.options.codec,
      onDeadLetter: (dead, written) =>
        this.out.warn({
          msg: written
            ? 'entry dead-lettered'
            : 'entry of a dead-letter stream failed and was acked (it stays in its stream; dead letters are never dead-lettered again)',
          stream: def.stream,
          group: def.group,
          id: dead.entry_id,
          code: dead.error_code,
          reason: dead.reason,
          deliveries: dead.delivery_count,
        }),
    });
  }

  /** Removes consumers gone replicas left in this server's groups (`consumerIdleRemoveMs`), logging each removal. */
  protected createIdleConsumerSweeper(groups: readonly ConsumerGroup[]): IdleConsumerSweeper {
    const idleMs = this.options.consumerIdleRemoveMs;
    return new IdleConsumerSweeper(() => groups, {
      idleMs,
      intervalMs: this.options.consumerSweepIntervalMs,
      metrics: this.metrics,
      onRemoved: (g, consumers) =>
        this.out.log({ msg: 'removed idle consumers', stream: g.stream, group: g.group, consumers, idleMs }),
      onError: (g, err) =>
        this.out.warn({
          msg: 'idle consumer pass failed; trying again at the next pass',
          stream: g.stream,
          group: g.group,
          err: (err as Error)?.message ?? String(err),
        }),
    });
  }

  /** A loop created its consumer group. */
  groupCreated(stream: string, group: string): void {
    this.out.log({ msg: 'consumer group created', stream, group });
  }

  /** Runs the Nest handler (pipes, interceptors, filters) inside the processing hooks; resolves when it is done. */
  handleMessage(def: LoopDefinition, data: unknown, ctx: RedisStreamsContext): Promise<void> {
    if (this.onProcessingStartHook === this.defaultStartHook && !this.onProcessingEndHook) {
      // Hot path (no tracing hooks installed): no extra promise and closures per entry.
      return Promise.resolve(def.handler(data, ctx)).then(settle);
    }
    return new Promise<void>((resolve, reject) => {
      this.onProcessingStartHook(this.transportId, ctx, async () => {
        const end = this.createProcessingEndHookRunner(ctx);
        try {
          const result = await def.handler(data, ctx);
          if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
          resolve();
        } catch (err) {
          reject(err);
        } finally {
          end();
        }
      });
    });
  }

  /** The one place every handler failure and transport error goes (logged, then `onError`). */
  reportError(error: unknown, info: StreamErrorInfo): void {
    // Neither a throwing logger nor a throwing onError may end a loop.
    try {
      const err =
        error instanceof Error
          ? error.message
          : typeof error === 'object'
            ? JSON.stringify(error)
            : String(error);
      if (info.outcome === 'transport') {
        if (!this.closed) this.out.warn({ msg: 'stream transport error; retrying', ...info, err });
      } else {
        this.out.warn({ msg: `handler failed (${info.outcome})`, ...info, err });
      }
    } catch {
      // ignored: see above
    }
    try {
      this.options.onError?.(error, info);
    } catch {
      // ignored: see above
    }
  }

  // ---- internals -------------------------------------------------------------------------

  private collectHandlers(): LoopDefinition[] {
    const defs: LoopDefinition[] = [];
    const seen = new Set<string>();
    for (const [pattern, handler] of this.messageHandlers) {
      const meta = (handler.extras as Record<string, unknown> | undefined)?.[STREAM_HANDLER_EXTRAS] as
        StreamHandlerMetadata | undefined;
      if (!meta) {
        this.out.warn({ msg: 'ignoring a handler that is not a @StreamHandler', pattern });
        continue;
      }
      if (handler.next)
        throw new Error(`two handlers for stream ${meta.stream} in group ${meta.group}: keep one`);
      const stream = resolveStreamRef(this.options.keyspace, meta.stream);
      const key = `${stream}\u0000${meta.group}`;
      if (seen.has(key))
        throw new Error(`two handlers for stream ${meta.stream} in group ${meta.group}: keep one`);
      seen.add(key);
      defs.push({
        pattern,
        ref: meta.stream,
        stream,
        group: meta.group,
        schema: meta.schema ? (Schemas[meta.schema] as Schema<unknown>) : undefined,
        batch: meta.batch,
        batchConcurrency: meta.batch ? (meta.concurrency ?? 1) : 1,
        lingerMs: meta.batch ? (meta.lingerMs ?? 0) : 0,
        handler,
      });
    }
    if (!defs.length) this.out.warn({ msg: 'no @StreamHandler registered: the transport reads nothing' });
    return defs;
  }

  private async readGroupGauges(): Promise<GroupGauge[]> {
    const command = this.command;
    if (!command || command.status !== 'ready') return [];
    const out: GroupGauge[] = [];
    const streams = [...new Set(this.loops.map((l) => l.stream))];
    const read = Promise.all(
      streams.map(async (stream) => {
        const groups = (await command.xinfo('GROUPS', stream)) as unknown[][];
        for (const raw of groups) {
          const g = fieldsToRecord(raw.map(String));
          if (!this.loops.some((l) => l.stream === stream && l.groupName === g.name)) continue;
          const lag = (raw as unknown[])[raw.indexOf('lag') + 1];
          out.push({
            stream,
            group: g.name,
            consumers: Number(g.consumers),
            pending: Number(g.pending),
            lag: raw.includes('lag') && lag !== null && lag !== undefined ? Number(lag) : null,
          });
        }
      }),
    );
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, 1000).unref());
    await Promise.race([read.catch(() => undefined), timeout]);
    return out;
  }

  private async waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() >= deadline || this.closed) return check();
      await new Promise((r) => setTimeout(r, 10));
    }
    return true;
  }
}

/** Waits for an observable handler result; a plain value or promise is already settled. */
function settle(result: unknown): Promise<void> | undefined {
  return isObservable(result)
    ? lastValueFrom(result, { defaultValue: undefined }).then(() => undefined)
    : undefined;
}

/** QUIT, but never wait on a Redis that is down: disconnect after `ms`. */
export async function quitWithin(redis: Redis, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    redis.quit().catch(() => undefined),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
  ]);
  clearTimeout(timer);
  redis.disconnect();
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
