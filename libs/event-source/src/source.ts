import { CoordEvent } from '@coordbus/envelope';

/**
 * A pull-style source of typed coord events (seed 002's `SentinelEventSource`).
 *
 * Contract (the seed's RFC questions, answered):
 * - **At-least-once with an explicit commit.** `poll()` returns the oldest events this source has
 *   not yet seen committed, in order, at most `maxBatch` of them. The caller handles them and then
 *   calls `commit(events)`. A poll is "successful" once its events are committed: until then the
 *   next `poll()` returns them again. That is what makes a poll **cancel-safe** — a poll abandoned
 *   mid-flight (its promise dropped, the process killed, or `signal` aborted) loses nothing, since
 *   nothing it read is forgotten before the consumer says so. A stream source needs the commit
 *   anyway: a consumer-group entry must be XACKed only after its durable effect, never on read.
 * - **Empty means nothing new**, not an error. `poll()` rejects only for conditions the source
 *   cannot recover from by itself (coord root unreadable, Redis unreachable); the caller retries.
 * - **`name` is stable across restarts** and is the `source` half of the `(source, tx_id)` dedup key.
 * - **`ingress_ts` is filled by the consumer** (the sentinel), not by the source: it means "when
 *   we saw it", while `ts` stays the source-local "when it happened".
 * - **Payloads are typed per kind** (`CoordEvent<K>`); a source never returns an event that failed
 *   validation (the stream source dead-letters it, the fs source skips and counts it).
 * - **Backpressure:** `maxBatch` bounds one poll; the backlog stays in the source (or the stream).
 */
export interface SentinelEventSource {
  /** Stable identifier, the `source` of the events it emits (`fs-poll`, `event-manager`, ...). */
  readonly name: string;
  /** The oldest uncommitted events (at most `maxBatch`); `[]` when there is nothing new. */
  poll(signal?: AbortSignal): Promise<CoordEvent[]>;
  /** Marks events returned by `poll()` as handled; they are never returned again. Idempotent. */
  commit(events: readonly CoordEvent[]): Promise<void>;
  /**
   * Events returned by `poll()` whose handling failed for a reason outside them (a dependency
   * outage: `isRetryable`): the next `poll()` returns them again WITHOUT counting a delivery, so
   * an outage never pushes them toward the dead-letter stream. Optional: a source that counts no
   * deliveries (files, memory) already returns uncommitted events as they were.
   */
  retryLater?(events: readonly CoordEvent[]): Promise<void>;
  /** How many events wait in the source beyond what was handed out (a lag gauge); null if unknown. */
  backlog(): Promise<number | null>;
  /** Releases connections and timers; pending uncommitted events stay where the source keeps them. */
  close(): Promise<void>;
}

/** Options every source understands. */
export interface SourceOptions {
  /** Largest number of events one `poll()` returns (default 256). */
  maxBatch?: number;
}

export const DEFAULT_MAX_BATCH = 256;

/** Validates `maxBatch`, throwing a RangeError naming the bad value. */
export function resolveMaxBatch(value: number | undefined): number {
  const n = value ?? DEFAULT_MAX_BATCH;
  if (!Number.isInteger(n) || n <= 0)
    throw new RangeError(`maxBatch must be a positive integer (got ${value})`);
  return n;
}

/** Rejects with an AbortError when `signal` is aborted. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) {
    const err = new Error('poll aborted');
    err.name = 'AbortError';
    throw err;
  }
}

/** Key of one event within a source (tx_id is unique per source). */
export function eventKey(event: Pick<CoordEvent, 'source' | 'tx_id'>): string {
  return `${event.source}\u0000${event.tx_id}`;
}
