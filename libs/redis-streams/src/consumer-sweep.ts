import type { ConsumerGroup } from './consumer-group';
import type { StreamMetrics } from './metrics';

export interface IdleConsumerSweepOptions {
  /** Remove consumers idle this long (ms) with nothing pending; 0 turns the sweep off. */
  idleMs: number;
  /** Time between passes (ms), jittered by ±20%; the first pass comes within one interval. Default 60000. */
  intervalMs?: number;
  /** Where consumer counts and removals are counted (`coordbus_stream_consumers*`). */
  metrics?: StreamMetrics;
  /** After a pass removed consumers from a group (for the log). */
  onRemoved?: (group: ConsumerGroup, names: string[]) => void;
  /** A pass over a group failed (Redis down, ...): reported once until a pass succeeds again. */
  onError?: (group: ConsumerGroup, err: unknown) => void;
}

/**
 * Runs {@link ConsumerGroup.removeIdleConsumers} over the groups one process reads, about once
 * per interval with jitter (replicas started together do not sweep together). Work per pass is
 * bounded: one XINFO CONSUMERS per group and at most 100 removal scripts. A replica removes only
 * other consumers, never its own.
 */
export class IdleConsumerSweeper {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private active = false;
  private failing = false;

  constructor(
    private readonly groups: () => readonly ConsumerGroup[],
    private readonly options: IdleConsumerSweepOptions,
  ) {}

  get enabled(): boolean {
    return this.options.idleMs > 0;
  }

  start(): void {
    if (!this.enabled || this.active) return;
    this.active = true;
    this.schedule(0.1 + 0.9 * Math.random());
  }

  /** Stops the timer and waits for a pass in progress. */
  async stop(): Promise<void> {
    this.active = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One pass over every group now (the timer's work; tests call it directly). */
  async runOnce(): Promise<void> {
    if (!this.enabled) return;
    let failed = false;
    for (const group of this.groups()) {
      try {
        const { removed, consumers } = await group.removeIdleConsumers(this.options.idleMs);
        const m = this.options.metrics;
        m?.consumers.labels(group.stream, group.group).set(consumers);
        if (removed.length) {
          m?.consumersRemoved.labels(group.stream, group.group).inc(removed.length);
          this.options.onRemoved?.(group, removed);
        }
      } catch (err) {
        failed = true;
        if (!this.failing) this.options.onError?.(group, err);
      }
    }
    this.failing = failed;
  }

  private schedule(fraction: number): void {
    const interval = this.options.intervalMs ?? 60_000;
    this.timer = setTimeout(() => {
      this.running = this.runOnce().finally(() => {
        this.running = undefined;
        if (this.active) this.schedule(0.8 + 0.4 * Math.random());
      });
    }, interval * fraction);
    this.timer.unref();
  }
}
