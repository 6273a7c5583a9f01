/**
 * Batches acks of one (stream, group): ids queue up and go out in one XACK when `batchSize` are
 * waiting, after `flushMs` (0: within the same event-loop turn), or on {@link flush}. A failed
 * XACK puts its ids back and retries with backoff; nothing is ever dropped.
 */
export class AckBuffer {
  private ids: string[] = [];
  private timer?: NodeJS.Timeout;
  private immediate?: NodeJS.Immediate;
  private failures = 0;
  private closed = false;

  constructor(
    private readonly send: (ids: string[]) => Promise<void>,
    private readonly options: {
      batchSize: number;
      flushMs: number;
      /** After an XACK succeeded. */
      onAcked: (ids: string[]) => void;
      /** After an XACK failed; `failures` counts consecutive failures. */
      onError: (err: unknown, ids: string[], failures: number) => void;
      /** Every flush in progress, so a close can wait for it. */
      track: (task: Promise<unknown>) => void;
    },
  ) {}

  /** Ids waiting to be acked. */
  get size(): number {
    return this.ids.length;
  }

  push(id: string): void {
    this.ids.push(id);
    if (this.ids.length >= this.options.batchSize) {
      void this.flush();
    } else if (!this.timer && !this.immediate) {
      if (this.options.flushMs > 0) this.timer = setTimeout(() => void this.flush(), this.options.flushMs);
      else this.immediate = setImmediate(() => void this.flush());
    }
  }

  /** Sends every buffered ack in one XACK. Never rejects. */
  flush(): Promise<void> {
    this.clearTimers();
    if (!this.ids.length) return Promise.resolve();
    const ids = this.ids;
    this.ids = [];
    const task = this.send(ids).then(
      () => {
        this.failures = 0;
        this.options.onAcked(ids);
      },
      (err: unknown) => {
        this.ids.push(...ids);
        this.failures++;
        this.options.onError(err, ids, this.failures);
        if (!this.closed && !this.timer) {
          this.timer = setTimeout(() => void this.flush(), Math.min(100 * 2 ** this.failures, 5000));
        }
      },
    );
    this.options.track(task);
    return task;
  }

  /** No more retry timers (a final {@link flush} may still be called). */
  close(): void {
    this.closed = true;
    this.clearTimers();
  }

  private clearTimers(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = undefined;
  }
}
