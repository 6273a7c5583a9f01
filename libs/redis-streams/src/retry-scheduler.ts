import type { RawEntry } from './consumer-group';

/**
 * Why an entry waits: `redeliver` after a handler failure (the retry is an XCLAIM, which Redis
 * counts as a delivery), `outage` after a retryable failure (a dependency is down: the entry is
 * kept with XCLAIM JUSTID, which counts nothing, and tried again with the same delivery count).
 */
export type RetryKind = 'redeliver' | 'outage';

export interface RetryItem {
  entries: RawEntry[];
  due: number;
  /** XCLAIM min-idle of a redelivery: not below what the entry waited, so a racing reclaim wins cleanly. */
  minIdleMs: number;
  kind: RetryKind;
}

/**
 * Entries waiting for another try. They keep their handler slots while they wait (`waiting`),
 * so a failing dependency stops the reads instead of piling up more work.
 */
export class RetryScheduler {
  private items: RetryItem[] = [];
  private count = 0;

  /** Entries waiting. */
  get waiting(): number {
    return this.count;
  }

  get size(): number {
    return this.items.length;
  }

  add(item: RetryItem): void {
    this.items.push(item);
    this.count += item.entries.length;
  }

  /** The earliest due time, or undefined when nothing waits. */
  nextDue(): number | undefined {
    let min: number | undefined;
    for (const r of this.items) if (min === undefined || r.due < min) min = r.due;
    return min;
  }

  /** True while an item of this kind waits. */
  has(kind: RetryKind): boolean {
    return this.items.some((r) => r.kind === kind);
  }

  hasDue(now: number): boolean {
    return this.items.some((r) => r.due <= now);
  }

  /** Removes and returns one due item (its entries no longer count as waiting). */
  takeDue(now: number): RetryItem | undefined {
    const idx = this.items.findIndex((r) => r.due <= now);
    if (idx < 0) return undefined;
    const [item] = this.items.splice(idx, 1);
    this.count -= item.entries.length;
    return item;
  }

  /** Exponential backoff from `baseMs`, doubling per attempt, capped at `capMs`. */
  static backoff(baseMs: number, attempt: number, capMs: number): number {
    return Math.min(baseMs * 2 ** Math.max(0, attempt - 1), capMs);
  }
}
