import {
  DecodeInfo,
  ErrorCode,
  fieldsToRecord,
  InvalidError,
  isRetryable,
  Schema,
  SchemaMismatchError,
  toCoordbusError,
  TooLargeError,
} from '@coordbus/envelope';
import type { MessageHandler } from '@nestjs/microservices';
import { performance } from 'node:perf_hooks';
import { AckBuffer } from './ack-buffer';
import { isNoGroup, RawEntry } from './consumer-group';
import { RedisStreamsContext } from './context';
import { PartialBatchError, type StreamBatchEntry } from './decorators';
import type { StreamMetrics } from './metrics';
import type { ResolvedServerOptions, StreamErrorInfo } from './options';
import { RetryItem, RetryScheduler } from './retry-scheduler';

export type { RawEntry } from './consumer-group';

/** One `@StreamHandler`/`@StreamBatchHandler` resolved against the keyspace. */
export interface LoopDefinition {
  pattern: string;
  /** As written in the decorator, e.g. `coordIngest:dead`. */
  ref: string;
  stream: string;
  group: string;
  schema?: Schema<unknown>;
  batch: boolean;
  /** Batches whose handlers may run at once (batch loops; 1 for single-entry loops). */
  batchConcurrency: number;
  /** Batch loops: wait this long before the read after a short one (0: read at once). */
  lingerMs: number;
  handler: MessageHandler;
}

/** An entry that passed decoding, with its DTO (or field record) and its `data` text when kept. */
interface Valid {
  entry: RawEntry;
  data: unknown;
  text: string | undefined;
}

/** What the loop needs of its {@link ConsumerGroup} (a fake in the unit tests: no network). */
export interface GroupPort {
  ensure(): Promise<boolean>;
  read(conn: LoopConnection, count: number, from: string, blockMs?: number): Promise<RawEntry[]>;
  pendingCounts(ids: string[], limit: number): Promise<Map<string, number>>;
  claimStale(
    minIdleMs: number,
    cursor: string,
    count: number,
  ): Promise<{ cursor: string; entries: RawEntry[] }>;
  claim(ids: string[], minIdleMs: number): Promise<RawEntry[]>;
  touch(ids: string[]): Promise<string[]>;
  ack(ids: string[]): Promise<void>;
  deadLetter(entry: RawEntry, reason: string, code: ErrorCode): Promise<unknown>;
}

/** The loop's blocking connection: only its state and a way to break a blocked read. */
export interface LoopConnection {
  readonly status: string;
  disconnect(): void;
}

/** What the server gives the loop besides its group: options, metrics, the handler call and error reports. */
export interface LoopHost {
  readonly options: ResolvedServerOptions;
  readonly metrics: StreamMetrics;
  handleMessage(def: LoopDefinition, data: unknown, ctx: RedisStreamsContext): Promise<void>;
  reportError(error: unknown, info: StreamErrorInfo): void;
  /** The loop created its consumer group (for the log). */
  groupCreated?(stream: string, group: string): void;
}

function isPermanent(err: unknown): boolean {
  return err instanceof InvalidError || err instanceof SchemaMismatchError || err instanceof TooLargeError;
}

/**
 * The read loop of one (stream, group): a blocking XREADGROUP on its own connection, bounded
 * handler concurrency, batched acks ({@link AckBuffer}), retries ({@link RetryScheduler}),
 * reclaim via XAUTOCLAIM, dead letters; all Redis I/O through its {@link GroupPort}.
 *
 * Every id the loop currently owns locally (running, waiting for a retry, acked but not yet
 * flushed, being dead-lettered) is in `held`, so a re-read of the pending list (after a
 * reconnect) or a reclaim never hands the same entry to a second handler in this process.
 *
 * A handler failure that is `retryable` (a dependency outage: see `isRetryable`) is not the
 * entry's fault: it does not count toward `maxDeliveries`. The entry is kept pending (its idle
 * time refreshed without a delivery, so no other replica reclaims it), the loop reports
 * not-ready and stops reading new entries, and it tries the kept entries again with backoff
 * until one succeeds. Only a failure of the entry itself ends in the dead-letter stream.
 */
export class StreamLoop {
  groupReady = false;
  private closed = false;
  private inFlight = 0;
  /** Batch handlers running (or about to start: a queued batch between release and its start). */
  private batchesRunning = 0;
  private reserved = 0;
  private readonly held = new Set<string>();
  private wake?: () => void;
  private sleeping?: { timer: NodeJS.Timeout; resolve: () => void };
  private idleWaiters: Array<() => void> = [];
  private readonly acks: AckBuffer;
  private readonly tasks = new Set<Promise<unknown>>();
  private readonly retries = new RetryScheduler();
  /** Consecutive retryable failures: while above 0 a dependency is down and the loop is not ready. */
  private outageFailures = 0;
  private nextReclaimAt = 0;
  private reclaimCursor = '0-0';
  private draining = true;
  private drainCursor = '0';
  /** A batch read ahead while the previous one ran: decoded and held, started when that one settles. */
  private queued?: Valid[];
  /** Reused by every decode of this loop (see DecodeInfo). */
  private readonly decoded: DecodeInfo = { text: undefined };
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
    readonly conn: LoopConnection,
    private readonly group: GroupPort,
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
    this.acks = new AckBuffer((ids) => this.group.ack(ids), {
      batchSize: this.opts.ackBatchSize,
      flushMs: this.opts.ackFlushMs,
      onAcked: (ids) => {
        for (const id of ids) this.held.delete(id);
        this.m.acked.inc(ids.length);
      },
      onError: (err, ids, failures) => {
        if (failures === 1) this.host.reportError(err, this.info(ids, 'transport'));
      },
      track: (task) => this.track(task),
    });
  }

  get stream(): string {
    return this.def.stream;
  }

  get groupName(): string {
    return this.def.group;
  }

  /** Group created, the blocking connection up, and no dependency outage being waited out. */
  isReady(): boolean {
    return this.notReadyReason() === undefined;
  }

  /** Why this loop is not ready (what /readyz shows a person), or undefined when it is. */
  notReadyReason(): string | undefined {
    if (this.closed) return 'closed';
    if (!this.groupReady) return 'consumer group not created yet';
    if (this.conn.status !== 'ready') return `blocking connection ${this.conn.status}`;
    if (this.outageFailures > 0) {
      return `waiting out a dependency outage (${this.outageFailures} failed tries, ${this.retries.waiting} entries kept, ${this.inFlight} in flight)`;
    }
    return undefined;
  }

  /** True while handlers fail with retryable errors (a dependency is down). */
  get waitingForDependency(): boolean {
    return this.outageFailures > 0;
  }

  start(): void {
    this.nextReclaimAt = this.now() + this.opts.reclaimIntervalMs;
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
      await this.acks.flush();
      await this.until(() => this.tasks.size === 0, deadline);
      if (!this.acks.size) break;
      await delay(Math.min(200, Math.max(0, deadline - Date.now())));
    }
    this.acks.close();
  }

  // ---- reading ---------------------------------------------------------------------------

  private capacity(): number {
    // A dependency is down: only the kept entries are tried (they hold their own slots).
    if (this.outageFailures > 0) return 0;
    if (this.def.batch) {
      const free =
        this.reserved === 0 && this.retries.waiting === 0 && this.batchesRunning < this.def.batchConcurrency;
      return free ? this.opts.batchSize : 0;
    }
    return this.opts.concurrency - (this.inFlight + this.reserved + this.retries.waiting);
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
          if (await this.group.ensure()) this.host.groupCreated?.(this.stream, this.groupName);
          this.groupReady = true;
        }
        // Due retries hold their own slots, so they run even when every slot is taken.
        if (this.retries.hasDue(this.now())) {
          await this.processRetries();
          continue;
        }
        if (this.capacity() <= 0) {
          if (this.canReadAhead()) {
            await this.readAhead();
            continue;
          }
          // A retry that came due since the check above still gets a timer: in an outage no
          // handler runs, so nothing else would end this wait.
          const due = this.retries.nextDue();
          await this.waitForSlot(due === undefined ? undefined : Math.max(1, due - this.now()));
          continue;
        }
        if (this.closed) break;
        const now = this.now();
        if (now >= this.nextReclaimAt) {
          await this.reclaim();
          this.nextReclaimAt = this.now() + this.opts.reclaimIntervalMs;
          continue;
        }
        const count = Math.min(this.opts.batchSize, this.capacity());
        if (count <= 0) continue;
        const nextDue = Math.min(this.nextReclaimAt, this.retries.nextDue() ?? Infinity);
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
        if (!this.draining) await this.linger(entries.length, count);
      } catch (err) {
        if (this.closed) break;
        if (isNoGroup(err)) this.groupReady = false;
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

  /**
   * A batch loop with every batch slot taken reads its next batch meanwhile (its handlers wait
   * on a database, Redis prepares the next reply meanwhile). The batch read ahead is held, not
   * handed to the handler, until a running one has settled (with concurrency 1: one batch at a
   * time, in stream order). Only new entries are read ahead, and never while a dependency is
   * down or retries wait.
   */
  private canReadAhead(): boolean {
    return (
      this.def.batch &&
      !this.closed &&
      !this.draining &&
      !this.queued &&
      this.inFlight > 0 &&
      this.reserved === 0 &&
      this.outageFailures === 0 &&
      this.retries.waiting === 0
    );
  }

  private async readAhead(): Promise<void> {
    const now = this.now();
    const nextDue = Math.min(this.nextReclaimAt, this.retries.nextDue() ?? Infinity);
    const blockMs = Math.max(1, Math.min(this.opts.blockMs, nextDue - now));
    const count = this.opts.batchSize;
    this.reserved += count;
    let entries: RawEntry[];
    try {
      entries = await this.readNew(count, blockMs);
    } finally {
      this.reserved -= count;
    }
    this.dispatch(entries, true);
    await this.linger(entries.length, count);
  }

  /**
   * A batch loop whose read came back short (caught up with the stream) waits `lingerMs` before
   * its next read, so entries arriving meanwhile make one batch rather than one each.
   */
  private async linger(got: number, asked: number): Promise<void> {
    if (this.def.lingerMs > 0 && got > 0 && got < asked && !this.closed) await this.sleep(this.def.lingerMs);
  }

  private async readNew(count: number, blockMs: number): Promise<RawEntry[]> {
    return this.group.read(this.conn, count, '>', blockMs);
  }

  /** Reads this consumer's own pending entries (id `0` onwards) until none are left, then switches to `>`. */
  private async readOwnPending(count: number): Promise<RawEntry[]> {
    // Flush first so entries already handled are not read back (they would be skipped anyway).
    await this.acks.flush();
    const entries = await this.group.read(this.conn, count, this.drainCursor);
    if (!entries.length) {
      this.draining = false;
      return entries;
    }
    this.drainCursor = entries[entries.length - 1].id;
    const fresh = entries.filter((e) => !this.held.has(e.id));
    const live = fresh.filter((e) => e.fields !== null).map((e) => e.id);
    if (live.length) {
      const counts = await this.group.pendingCounts(live, live.length + this.held.size);
      for (const e of fresh) e.deliveryCount = counts.get(e.id) ?? e.deliveryCount;
    }
    return fresh;
  }

  /**
   * Validates entries and starts their handlers (or dead-letters them). Never throws. A batch
   * read `ahead` waits in `queued` while the previous batch still runs.
   */
  private dispatch(entries: RawEntry[], ahead = false): void {
    if (!entries.length) return;
    const valid: Valid[] = [];
    const { schema } = this.def;
    for (const entry of entries) {
      if (this.held.has(entry.id)) continue;
      if (entry.fields === null) {
        // Deleted from the stream (trimmed) while pending: nothing to handle, just clear it.
        this.held.add(entry.id);
        this.acks.push(entry.id);
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
      let text: string | undefined;
      if (schema) {
        try {
          data = this.opts.codec.decode(schema, entry.fields, this.decoded);
          text = this.decoded.text;
        } catch (err) {
          // Not a handler failure: the dead letter itself is the report (the server logs it).
          const e = toCoordbusError(err);
          this.sendToDeadLetter(entry, e.message, e.code);
          continue;
        }
      } else {
        data = fieldsToRecord(entry.fields);
      }
      valid.push({ entry, data, text });
    }
    if (!valid.length) return;
    this.m.delivered.inc(valid.length);
    if (this.def.batch && ahead && this.batchesRunning >= this.def.batchConcurrency) {
      for (const v of valid) this.held.add(v.entry.id);
      this.queued = valid;
    } else if (this.def.batch) {
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
      this.groupName,
      this.opts.consumer,
    ]);
    this.runHandler(data, ctx, [entry]);
  }

  private runBatch(valid: Valid[]): void {
    this.inFlight += valid.length;
    this.batchesRunning++;
    for (const v of valid) this.held.add(v.entry.id);
    const last = valid[valid.length - 1].entry;
    const maxCount = Math.max(...valid.map((v) => v.entry.deliveryCount));
    const ctx = new RedisStreamsContext([this.stream, last.id, maxCount, this.groupName, this.opts.consumer]);
    const entries: StreamBatchEntry<unknown>[] = valid.map((v) => ({
      id: v.entry.id,
      data: v.data,
      deliveryCount: v.entry.deliveryCount,
      text: v.text,
    }));
    this.runHandler(
      { stream: this.stream, group: this.groupName, entries },
      ctx,
      valid.map((v) => v.entry),
    );
  }

  private runHandler(data: unknown, ctx: RedisStreamsContext, entries: RawEntry[]): void {
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
        // The dependency answers again: back to ready, and reads resume.
        this.outageFailures = 0;
        for (const e of entries) this.acks.push(e.id);
        this.release(entries.length);
      },
      (err: unknown) => {
        this.m.latency.observe((performance.now() - started) / 1000);
        if (err instanceof PartialBatchError) {
          // A batch handler committed all but some entries: ack those, fail only the others.
          const errors = new Map(err.failures.map((f) => [f.id, f.error]));
          for (const e of entries) {
            if (errors.has(e.id)) this.failed([e], errors.get(e.id));
            else this.acks.push(e.id);
          }
        } else {
          this.failed(entries, err);
        }
        this.release(entries.length);
      },
    );
  }

  private release(n: number): void {
    this.inFlight -= n;
    if (this.def.batch) this.batchesRunning--;
    const queued = this.batchesRunning < this.def.batchConcurrency ? this.queued : undefined;
    if (queued) {
      this.queued = undefined;
      if (this.closed || this.outageFailures > 0) {
        this.leaveUnstarted(queued);
      } else {
        // Its slots are taken now and its handler starts on the next turn of the event loop: the
        // loop, woken below, first sends its read of the batch after it, so Redis builds that
        // reply while this batch is handled rather than after (its handler's synchronous part,
        // the archivist's row mapping, would otherwise run before the read goes out).
        this.inFlight += queued.length;
        this.batchesRunning++;
        setImmediate(() => this.startQueued(queued));
      }
    }
    if (this.capacity() > 0 || this.canReadAhead()) this.wakeUp();
    if (this.inFlight === 0 && this.tasks.size === 0) this.notifyIdle();
  }

  private startQueued(queued: Valid[]): void {
    this.inFlight -= queued.length;
    this.batchesRunning--;
    if (!this.closed && this.outageFailures === 0) {
      this.runBatch(queued);
      return;
    }
    this.leaveUnstarted(queued);
    if (this.inFlight === 0 && this.tasks.size === 0) this.notifyIdle();
  }

  /**
   * A batch read ahead and never started: left pending here, read again from our pending list
   * once reading resumes (a stopping replica's next start, or another replica's reclaim, takes
   * them otherwise).
   */
  private leaveUnstarted(queued: Valid[]): void {
    for (const v of queued) this.held.delete(v.entry.id);
    this.draining = true;
    this.drainCursor = '0';
  }

  /** Resolves when a slot frees up, or after `ms` when given (a retry coming due). */
  private waitForSlot(ms: number | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(() => this.wakeUp(), ms);
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

  /**
   * A handler rejected. Retryable (a dependency is down): keep the entries, uncounted, and try
   * them again with backoff. Otherwise dead-letter what cannot succeed and schedule a counted
   * redelivery for the rest.
   */
  private failed(entries: RawEntry[], err: unknown): void {
    if (isRetryable(err)) {
      this.outageFailures++;
      this.host.reportError(
        err,
        this.info(
          entries.map((e) => e.id),
          'outage',
        ),
      );
      if (this.closed) {
        for (const e of entries) this.held.delete(e.id);
        return;
      }
      const wait = RetryScheduler.backoff(Math.max(this.opts.retryDelayMs, 50), this.outageFailures, 5_000);
      this.retries.add({ entries, due: this.now() + wait, minIdleMs: 0, kind: 'outage' });
      this.wakeUp();
      return;
    }
    // A failure of the entry itself means the handler reached its dependency: the outage is over
    // (left set, reads would stay stopped with no success to come, as for a poison entry).
    this.outageFailures = 0;
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
    const wait = RetryScheduler.backoff(this.opts.retryDelayMs, count, 30_000);
    this.retries.add({
      entries: retry,
      due: this.now() + wait,
      minIdleMs: Math.max(0, wait - 5),
      kind: 'redeliver',
    });
    // The loop may be waiting for a slot with no timer for this retry: let it recompute.
    this.wakeUp();
  }

  /**
   * Runs due retries. A redelivery is an XCLAIM to this consumer (Redis counts the delivery); an
   * entry kept through an outage is re-taken with XCLAIM JUSTID (nothing counted) and handled
   * again with the delivery count it had.
   */
  private async processRetries(): Promise<void> {
    while (!this.closed) {
      const item = this.retries.takeDue(this.now());
      if (!item) break;
      const ids = item.entries.map((e) => e.id);
      const n = ids.length;
      this.reserved += n;
      let claimed: RawEntry[];
      try {
        claimed = await this.claimAgain(item, ids);
      } catch (err) {
        this.retries.add({ ...item, due: this.now() + 1000 });
        throw err;
      } finally {
        this.reserved -= n;
      }
      // Ids not returned were claimed by another consumer meanwhile or deleted: no longer ours.
      for (const id of ids) this.held.delete(id);
      this.dispatch(claimed);
      if (item.kind === 'outage') this.endOutageWithoutWitness();
    }
  }

  /**
   * Only a handler that succeeds ends an outage, and reads stay stopped until one does. When the
   * entries kept through it are gone (another replica reclaimed and handled them, or the stream
   * was trimmed) and nothing else runs or waits, no handler is left to succeed: resume reading,
   * and let the next failure, if the dependency is still down, mark the outage again.
   */
  private endOutageWithoutWitness(): void {
    if (this.outageFailures === 0 || this.inFlight > 0 || this.retries.has('outage')) return;
    this.outageFailures = 0;
    this.wakeUp();
  }

  private async claimAgain(item: RetryItem, ids: string[]): Promise<RawEntry[]> {
    if (item.kind === 'outage') {
      const still = new Set(await this.group.touch(ids));
      return item.entries.filter((e) => still.has(e.id));
    }
    const claimed = await this.group.claim(ids, item.minIdleMs);
    const previous = new Map(item.entries.map((e) => [e.id, e.deliveryCount]));
    for (const c of claimed) c.deliveryCount = (previous.get(c.id) ?? 0) + 1;
    return claimed;
  }

  private sendToDeadLetter(entry: RawEntry, reason: string, code: ErrorCode): void {
    this.held.add(entry.id);
    const task = this.group.deadLetter(entry, reason, code).then(
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

  // ---- reclaim ---------------------------------------------------------------------------

  /** Claims entries idle past `reclaimIdleMs` on any consumer (ours included) with XAUTOCLAIM. */
  private async reclaim(): Promise<void> {
    for (let round = 0; round < 10 && !this.closed && this.groupReady; round++) {
      const count = Math.min(this.capacity(), this.opts.batchSize);
      if (count <= 0) return;
      this.reserved += count;
      let claimedAll: boolean;
      try {
        const { cursor, entries } = await this.group.claimStale(
          this.opts.reclaimIdleMs,
          this.reclaimCursor,
          count,
        );
        this.reclaimCursor = cursor;
        claimedAll = entries.length >= count && cursor !== '0-0';
        const fresh = entries.filter((e) => !this.held.has(e.id));
        if (fresh.length) {
          const counts = await this.group.pendingCounts(
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

  /**
   * The clock that due times and reclaim times are read from (tests drive it to hit the
   * boundaries; close() keeps the real one so a stopped clock cannot hold up a shutdown).
   */
  protected now(): number {
    return Date.now();
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
    return { stream: this.stream, group: this.groupName, consumer: this.opts.consumer, ids, outcome };
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
