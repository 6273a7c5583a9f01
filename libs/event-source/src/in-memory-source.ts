import { CoordEvent, EnvelopeCodec, Schemas } from '@coordbus/envelope';
import { resolveMaxBatch, SentinelEventSource, SourceOptions, throwIfAborted } from './source';

/**
 * A `SentinelEventSource` backed by an in-process queue: the test double for any subscriber
 * (seed 002 RFC question 7: shipped as a public helper, not hidden in test code).
 *
 * It follows the same contract as the real sources — `poll()` returns the oldest uncommitted
 * events, `commit()` removes them — so a subscriber tested against it behaves the same on Redis.
 */
export class InMemorySource implements SentinelEventSource {
  private readonly queue: CoordEvent[] = [];
  private readonly maxBatch: number;
  private readonly codec = new EnvelopeCodec();
  /** Number of completed `poll()` calls (tests use it to wait for a consumer to catch up). */
  polls = 0;
  /** Number of events committed so far. */
  committed = 0;

  constructor(
    readonly name = 'in-memory',
    options: SourceOptions = {},
  ) {
    this.maxBatch = resolveMaxBatch(options.maxBatch);
  }

  /** Queues events (validated, so a test cannot feed a subscriber something a real source never would). */
  push(...events: CoordEvent[]): void {
    for (const event of events) this.queue.push(this.codec.validate(Schemas.coordEvent, event));
  }

  /** Events queued and not yet committed. */
  get pending(): number {
    return this.queue.length;
  }

  async poll(signal?: AbortSignal): Promise<CoordEvent[]> {
    throwIfAborted(signal);
    this.polls++;
    return this.queue.slice(0, this.maxBatch);
  }

  async commit(events: readonly CoordEvent[]): Promise<void> {
    const done = new Set(events.map((e) => e.tx_id));
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (done.has(this.queue[i].tx_id)) {
        this.queue.splice(i, 1);
        this.committed++;
      }
    }
  }

  async backlog(): Promise<number> {
    return Math.max(0, this.queue.length - this.maxBatch);
  }

  async close(): Promise<void> {}
}
