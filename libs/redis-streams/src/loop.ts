import {
  ErrorCode,
  fieldsToRecord,
  InvalidError,
  Schema,
  SchemaMismatchError,
  toCoordbusError,
  TooLargeError,
} from '@coordbus/envelope';
import type { MessageHandler } from '@nestjs/microservices';
import type Redis from 'ioredis';
import { performance } from 'node:perf_hooks';
import { RedisStreamsContext } from './context';
import { PartialBatchError, type StreamBatchEntry } from './decorators';
import type { StreamMetrics } from './metrics';
import type { ResolvedServerOptions, StreamErrorInfo } from './options';

/** One stream entry as read: `fields` is null when the entry was deleted while pending. */
export interface RawEntry {
  id: string;
  fields: string[] | null;
  deliveryCount: number;
}

/** One `@StreamHandler`/`@StreamBatchHandler` resolved against the keyspace. */
export interface LoopDefinition {
  pattern: string;
  /** As written in the decorator, e.g. `coordIngest:dead`. */
  ref: string;
  stream: string;
  group: string;
  schema?: Schema<unknown>;
  batch: boolean;
  handler: MessageHandler;
}

/** The server's I/O, which the loop drives (each one a small overridable method of the server). */
export interface LoopHost {
  readonly options: ResolvedServerOptions;
  readonly metrics: StreamMetrics;
  ensureGroup(stream: string, group: string): Promise<void>;
  readEntries(
    conn: Redis,
    stream: string,
    group: string,
    count: number,
    from: string,
    blockMs?: number,
  ): Promise<RawEntry[]>;
  pendingCounts(stream: string, group: string, ids: string[], limit: number): Promise<Map<string, number>>;
  claimStale(
    stream: string,
    group: string,
    cursor: string,
    count: number,
  ): Promise<{ cursor: string; entries: RawEntry[] }>;
  claimForRetry(stream: string, group: string, ids: string[], minIdleMs: number): Promise<RawEntry[]>;
  ack(stream: string, group: string, ids: string[]): Promise<void>;
  deadLetter(stream: string, group: string, entry: RawEntry, reason: string, code: ErrorCode): Promise<void>;
  handleMessage(def: LoopDefinition, data: unknown, ctx: RedisStreamsContext): Promise<void>;
  reportError(error: unknown, info: StreamErrorInfo): void;
}

interface RetryItem {
  entries: RawEntry[];
  due: number;
  minIdleMs: number;
}

const NOGROUP = /NOGROUP/;

function isPermanent(err: unknown): boolean {
  return err instanceof InvalidError || err instanceof SchemaMismatchError || err instanceof TooLargeError;
}

/**
 * The read loop of one (stream, group): a blocking XREADGROUP on its own connection, bounded
 * handler concurrency, batched acks, retries via XCLAIM, reclaim via XAUTOCLAIM, dead letters.
 *
 * Every id the loop currently owns locally (running, waiting for a retry, acked but not yet
 * flushed, being dead-lettered) is in `held`, so a re-read of the pending list (after a
 * reconnect) or a reclaim never hands the same entry to a second handler in this process.
 */
export class StreamLoop {
  groupReady = false;
  private closed = false;
  private inFlight = 0;
  private reserved = 0;
  private readonly held = new Set<string>();
  private wake?: () => void;
  private sleeping?: { timer: NodeJS.Timeout; resolve: () => void };
  private idleWaiters: Array<() => void> = [];
  private acks: string[] = [];
  private ackTimer?: NodeJS.Timeout;
  private ackImmediate?: NodeJS.Immediate;
  private ackFailures = 0;
  private readonly tasks = new Set<Promise<unknown>>();
  private retries: RetryItem[] = [];
  /** Entries waiting in `retries`: they keep their handler slots, so a failing dependency stops the reads. */
  private waiting = 0;
  private nextReclaimAt = 0;
  private reclaimCursor = '0-0';
  private draining = true;
  private drainCursor = '0';
  private running?: Promise<void>;
  private readonly opts: ResolvedServerOptions;
  private readonly m: {
    delivered: { inc(n?: number): void };
    acked: { inc(n?: number): void };
    retried: { inc(n?: number): void };
    deadLettered: { inc(n?: number): void };
    reclaimed: { inc(n?: number): void };
    latency: { observe(v: number): void };
  };

  constructor(
    private readonly host: LoopHost,
    readonly def: LoopDefinition,
    readonly conn: Redis,
  ) {
    this.opts = host.options;
    const l = [def.stream, def.group];
    const mx = host.metrics;
    // Children bound once: label lookups per entry would cost more than the rest of the hot path.
    this.m = {
      delivered: mx.delivered.labels(...l),
      acked: mx.acked.labels(...l),
      retried: mx.retried.labels(...l),
      deadLettered: mx.deadLettered.labels(...l),
      reclaimed: mx.reclaimed.labels(...l),
      latency: mx.handlerSeconds.labels(...l),
    };
  }

  get stream(): string {
    return this.def.stream;
  }

  get group(): string {
    return this.def.group;
  }

  /** Group created and the blocking connection up. */
  isReady(): boolean {
    return this.groupReady && this.conn.status === 'ready' && !this.closed;
  }

  start(): void {
    this.nextReclaimAt = Date.now() + this.opts.reclaimIntervalMs;
    this.running = this.run();
  }

  /** Stops reading, waits for in-flight handlers (up to `timeoutMs`), flushes acks. */
  async close(timeoutMs: number): Promise<void> {
    this.closed = true;
    this.wakeUp();
    if (this.sleeping) {
      clearTimeout(this.sleeping.timer);
      this.sleeping.resolve();
    }
    // Breaks a blocking XREADGROUP at once; the loop sees `closed` and returns.
    this.conn.disconnect();
    await this.running;
    const deadline = Date.now() + timeoutMs;
    await this.until(() => this.inFlight === 0 && this.tasks.size === 0, deadline);
    while (Date.now() < deadline) {
      await this.flushAcks();
      await this.until(() => this.tasks.size === 0, deadline);
      if (!this.acks.length) break;
      await delay(Math.min(200, Math.max(0, deadline - Date.now())));
    }
    clearTimeout(this.ackTimer);
    if (this.ackImmediate) clearImmediate(this.ackImmediate);
  }

  // ---- reading ---------------------------------------------------------------------------

  private capacity(): number {
    const busy = this.inFlight + this.reserved + this.waiting;
    if (this.def.batch) return busy === 0 ? this.opts.batchSize : 0;
    return this.opts.concurrency - busy;
  }

  /**
   * The loop: the only place that takes handler slots, so reads, retries and reclaims share one
   * budget exactly. A blocking read waits at most until the next retry or reclaim is due.
   */
  private async run(): Promise<void> {
    let backoff = 0;
    while (!this.closed) {
      try {
        if (!this.groupReady) {
          await this.host.ensureGroup(this.stream, this.group);
          this.groupReady = true;
        }
        // Due retries hold their own slots, so they run even when every slot is taken.
        if (this.retries.some((r) => r.due <= Date.now())) {
          await this.processRetries();
          continue;
        }
        if (this.capacity() <= 0) {
          await this.waitForSlot(
            this.retries.length ? Math.min(...this.retries.map((r) => r.due)) - Date.now() : 0,
          );
          continue;
        }
        if (this.closed) break;
        const now = Date.now();
        if (now >= this.nextReclaimAt) {
          await this.reclaim();
          this.nextReclaimAt = Date.now() + this.opts.reclaimIntervalMs;
          continue;
        }
        const count = Math.min(this.opts.batchSize, this.capacity());
        if (count <= 0) continue;
        const nextDue = Math.min(this.nextReclaimAt, ...this.retries.map((r) => r.due));
        const blockMs = Math.max(1, Math.min(this.opts.blockMs, nextDue - now));
        this.reserved += count;
        let entries: RawEntry[];
        try {
          entries = this.draining ? await this.readOwnPending(count) : await this.readNew(count, blockMs);
        } finally {
          this.reserved -= count;
        }
        this.dispatch(entries);
        backoff = 0;
      } catch (err) {
        if (this.closed) break;
        if (NOGROUP.test(String((err as Error)?.message))) this.groupReady = false;
        // After any failure, re-read our own pending list first: a reply lost with the
        // connection may have delivered entries to us that no handler has seen.
        this.draining = true;
        this.drainCursor = '0';
        this.host.reportError(err, this.info([], 'transport'));
        backoff = Math.min(Math.max(100, backoff * 2), 5000);
        await this.sleep(backoff * (0.5 + Math.random() / 2));
      }
    }
  }

  private async readNew(count: number, blockMs: number): Promise<RawEntry[]> {
    return this.host.readEntries(this.conn, this.stream, this.group, count, '>', blockMs);
  }

  /** Reads this consumer's own pending entries (id `0` onwards) until none are left, then switches to `>`. */
  private async readOwnPending(count: number): Promise<RawEntry[]> {
    // Flush first so entries already handled are not read back (they would be skipped anyway).
    await this.flushAcks();
    const entries = await this.host.readEntries(this.conn, this.stream, this.group, count, this.drainCursor);
    if (!entries.length) {
      this.draining = false;
      return entries;
    }
    this.drainCursor = entries[entries.length - 1].id;
    const fresh = entries.filter((e) => !this.held.has(e.id));
    const live = fresh.filter((e) => e.fields !== null).map((e) => e.id);
    if (live.length) {
      const counts = await this.host.pendingCounts(
        this.stream,
        this.group,
        live,
        live.length + this.held.size,
      );
      for (const e of fresh) e.deliveryCount = counts.get(e.id) ?? e.deliveryCount;
    }
    return fresh;
  }

  /** Validates entries and starts their handlers (or dead-letters them). Never throws. */
  private dispatch(entries: RawEntry[]): void {
    if (!entries.length) return;
    const valid: Array<{ entry: RawEntry; data: unknown }> = [];
    const { schema } = this.def;
    for (const entry of entries) {
      if (this.held.has(entry.id)) continue;
      if (entry.fields === null) {
        // Deleted from the stream (trimmed) while pending: nothing to handle, just clear it.
        this.held.add(entry.id);
        this.queueAck(entry.id);
        continue;
      }
      if (entry.deliveryCount > this.opts.maxDeliveries) {
        this.sendToDeadLetter(
          entry,
          `delivered ${entry.deliveryCount} times without an ack (limit ${this.opts.maxDeliveries}); its consumers keep dying or timing out`,
          ErrorCode.Internal,
        );
        continue;
      }
      let data: unknown;
      if (schema) {
        try {
          data = this.opts.codec.decode(schema, entry.fields);
        } catch (err) {
          // Not a handler failure: the dead letter itself is the report (the server logs it).
          const e = toCoordbusError(err);
          this.sendToDeadLetter(entry, e.message, e.code);
          continue;
        }
      } else {
        data = fieldsToRecord(entry.fields);
      }
      valid.push({ entry, data });
    }
    if (!valid.length) return;
    this.m.delivered.inc(valid.length);
    if (this.def.batch) {
      this.runBatch(valid);
    } else {
      for (const v of valid) this.runOne(v.entry, v.data);
    }
  }

  private runOne(entry: RawEntry, data: unknown): void {
    this.inFlight++;
    this.held.add(entry.id);
    const ctx = new RedisStreamsContext([
      this.stream,
      entry.id,
      entry.deliveryCount,
      this.group,
      this.opts.consumer,
    ]);
    const started = performance.now();
    let result: Promise<void>;
    try {
      result = this.host.handleMessage(this.def, data, ctx);
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      () => {
        this.m.latency.observe((performance.now() - started) / 1000);
        this.queueAck(entry.id);
        this.release(1);
      },
      (err: unknown) => {
        this.m.latency.observe((performance.now() - started) / 1000);
        this.failed([entry], err);
        this.release(1);
      },
    );
  }

  private runBatch(valid: Array<{ entry: RawEntry; data: unknown }>): void {
    const n = valid.length;
    this.inFlight += n;
    for (const v of valid) this.held.add(v.entry.id);
    const last = valid[n - 1].entry;
    const maxCount = Math.max(...valid.map((v) => v.entry.deliveryCount));
    const ctx = new RedisStreamsContext([this.stream, last.id, maxCount, this.group, this.opts.consumer]);
    const entries: StreamBatchEntry<unknown>[] = valid.map((v) => ({
      id: v.entry.id,
      data: v.data,
      deliveryCount: v.entry.deliveryCount,
    }));
    const started = performance.now();
    let result: Promise<void>;
    try {
      result = this.host.handleMessage(this.def, { stream: this.stream, group: this.group, entries }, ctx);
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      () => {
        this.m.latency.observe((performance.now() - started) / 1000);
        for (const v of valid) this.queueAck(v.entry.id);
        this.release(n);
      },
      (err: unknown) => {
        this.m.latency.observe((performance.now() - started) / 1000);
        if (err instanceof PartialBatchError) {
          const errors = new Map(err.failures.map((f) => [f.id, f.error]));
          for (const v of valid) {
            if (errors.has(v.entry.id)) this.failed([v.entry], errors.get(v.entry.id));
            else this.queueAck(v.entry.id);
          }
        } else {
          this.failed(
            valid.map((v) => v.entry),
            err,
          );
        }
        this.release(n);
      },
    );
  }

  private release(n: number): void {
    this.inFlight -= n;
    if (this.capacity() > 0) this.wakeUp();
    if (this.inFlight === 0 && this.tasks.size === 0) this.notifyIdle();
  }

  /** Resolves when a slot frees up (or after `ms` when positive, for a retry coming due). */
  private waitForSlot(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = ms > 0 ? setTimeout(() => this.wakeUp(), ms) : undefined;
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  // ---- failures, retries, dead letters ----------------------------------------------------

  /** A handler rejected: dead-letter what cannot succeed, schedule a redelivery for the rest. */
  private failed(entries: RawEntry[], err: unknown): void {
    const permanent = isPermanent(err);
    const dead = entries.filter((e) => permanent || e.deliveryCount >= this.opts.maxDeliveries);
    const retry = entries.filter((e) => !(permanent || e.deliveryCount >= this.opts.maxDeliveries));
    this.host.reportError(
      err,
      this.info(
        entries.map((e) => e.id),
        dead.length ? 'dead-letter' : 'retry',
      ),
    );
    if (dead.length) {
      const e = toCoordbusError(err);
      const message = e.message || 'handler failed';
      for (const entry of dead) {
        const reason = permanent
          ? message
          : `handler failed on all ${entry.deliveryCount} deliveries; last error: ${message}`;
        this.sendToDeadLetter(entry, reason, e.code);
      }
    }
    if (!retry.length) return;
    this.m.retried.inc(retry.length);
    if (this.closed) {
      // Left pending: this consumer's next start (or another replica's reclaim) redelivers it.
      for (const e of retry) this.held.delete(e.id);
      return;
    }
    const count = Math.max(...retry.map((e) => e.deliveryCount));
    const wait = Math.min(this.opts.retryDelayMs * 2 ** (count - 1), 30_000);
    this.retries.push({ entries: retry, due: Date.now() + wait, minIdleMs: Math.max(0, wait - 5) });
    this.waiting += retry.length;
    // The loop may be waiting for a slot with no timer for this retry: let it recompute.
    this.wakeUp();
  }

  /** Redelivers due failed entries to this consumer with XCLAIM (which counts the delivery in Redis). */
  private async processRetries(): Promise<void> {
    while (!this.closed) {
      const now = Date.now();
      const idx = this.retries.findIndex((r) => r.due <= now);
      if (idx < 0) break;
      const [item] = this.retries.splice(idx, 1);
      const ids = item.entries.map((e) => e.id);
      const n = ids.length;
      this.waiting -= n;
      this.reserved += n;
      let claimed: RawEntry[];
      try {
        claimed = await this.host.claimForRetry(this.stream, this.group, ids, item.minIdleMs);
      } catch (err) {
        this.retries.push({ ...item, due: Date.now() + 1000 });
        this.waiting += n;
        throw err;
      } finally {
        this.reserved -= n;
      }
      const previous = new Map(item.entries.map((e) => [e.id, e.deliveryCount]));
      // Ids not returned were claimed by another consumer meanwhile or deleted: no longer ours.
      for (const id of ids) this.held.delete(id);
      for (const c of claimed) c.deliveryCount = (previous.get(c.id) ?? 0) + 1;
      this.dispatch(claimed);
    }
  }

  private sendToDeadLetter(entry: RawEntry, reason: string, code: ErrorCode): void {
    this.held.add(entry.id);
    const task = this.host.deadLetter(this.stream, this.group, entry, reason, code).then(
      () => {
        this.held.delete(entry.id);
        this.m.deadLettered.inc();
      },
      (err: unknown) => {
        // Still pending in Redis: a later re-read or reclaim brings it back and tries again.
        this.held.delete(entry.id);
        this.host.reportError(err, this.info([entry.id], 'transport'));
      },
    );
    this.track(task);
  }

  // ---- acks ------------------------------------------------------------------------------

  private queueAck(id: string): void {
    this.acks.push(id);
    if (this.acks.length >= this.opts.ackBatchSize) {
      void this.flushAcks();
    } else if (!this.ackTimer && !this.ackImmediate) {
      if (this.opts.ackFlushMs > 0)
        this.ackTimer = setTimeout(() => void this.flushAcks(), this.opts.ackFlushMs);
      else this.ackImmediate = setImmediate(() => void this.flushAcks());
    }
  }

  /** Sends every buffered ack in one XACK; failed acks go back in the buffer and are retried. Never rejects. */
  private flushAcks(): Promise<void> {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (this.ackImmediate) clearImmediate(this.ackImmediate);
    this.ackImmediate = undefined;
    if (!this.acks.length) return Promise.resolve();
    const ids = this.acks;
    this.acks = [];
    const task = this.host.ack(this.stream, this.group, ids).then(
      () => {
        for (const id of ids) this.held.delete(id);
        this.m.acked.inc(ids.length);
        this.ackFailures = 0;
      },
      (err: unknown) => {
        this.acks.push(...ids);
        this.ackFailures++;
        if (this.ackFailures === 1) this.host.reportError(err, this.info(ids, 'transport'));
        if (!this.closed && !this.ackTimer) {
          this.ackTimer = setTimeout(
            () => void this.flushAcks(),
            Math.min(100 * 2 ** this.ackFailures, 5000),
          );
        }
      },
    );
    this.track(task);
    return task;
  }

  // ---- reclaim ---------------------------------------------------------------------------

  /** Claims entries idle past `reclaimIdleMs` on any consumer (ours included) with XAUTOCLAIM. */
  private async reclaim(): Promise<void> {
    for (let round = 0; round < 10 && !this.closed && this.groupReady; round++) {
      const count = Math.min(this.capacity(), this.opts.batchSize);
      if (count <= 0) return;
      this.reserved += count;
      let claimedAll: boolean;
      try {
        const { cursor, entries } = await this.host.claimStale(
          this.stream,
          this.group,
          this.reclaimCursor,
          count,
        );
        this.reclaimCursor = cursor;
        claimedAll = entries.length >= count && cursor !== '0-0';
        const fresh = entries.filter((e) => !this.held.has(e.id));
        if (fresh.length) {
          const counts = await this.host.pendingCounts(
            this.stream,
            this.group,
            fresh.map((e) => e.id),
            fresh.length + this.held.size,
          );
          for (const e of fresh) e.deliveryCount = counts.get(e.id) ?? e.deliveryCount;
          this.m.reclaimed.inc(fresh.length);
        }
        this.reserved -= count;
        this.dispatch(fresh);
      } catch (err) {
        this.reserved -= count;
        throw err;
      }
      if (!claimedAll) return;
    }
  }

  // ---- helpers ---------------------------------------------------------------------------

  private track(task: Promise<unknown>): void {
    this.tasks.add(task);
    void task.finally(() => {
      this.tasks.delete(task);
      if (this.inFlight === 0 && this.tasks.size === 0) this.notifyIdle();
    });
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async until(done: () => boolean, deadline: number): Promise<void> {
    while (!done() && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, Math.min(100, deadline - Date.now())));
        this.idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleeping = undefined;
        resolve();
      }, ms);
      this.sleeping = { timer, resolve };
    });
  }

  private info(ids: string[], outcome: StreamErrorInfo['outcome']): StreamErrorInfo {
    return { stream: this.stream, group: this.group, consumer: this.opts.consumer, ids, outcome };
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
