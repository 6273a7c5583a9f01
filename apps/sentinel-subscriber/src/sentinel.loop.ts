import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { LOGGER } from '@coordbus/runtime';
import { CoordEvent, isRetryable } from '@coordbus/envelope';
import { SentinelEventSource } from '@coordbus/event-source';
import { SentinelMetrics } from './metrics';
import { SentinelService } from './sentinel.service';
import { EVENT_SOURCE, LOOP_OPTIONS } from './tokens';

export interface SentinelLoopOptions {
  /** Pause after a poll that returned less than a full batch (fs-poll: the tick; stream: 0, its poll blocks). */
  idleDelayMs: number;
  /** A full batch, meaning more is waiting: poll again at once. */
  maxBatch: number;
  /** Cap of the retry backoff after a failed poll (default 5 s). */
  maxBackoffMs?: number;
}

/**
 * seed 002's tick loop: `poll()`, `handleEvent()` for each event of the batch, `commit()` what
 * was handled. It never touches files or stream commands. An event whose handling failed is not
 * committed, so the source returns it again on the next poll (its observation may then land after
 * later ones of the same batch: observations are deduped, not strictly ordered); a failed poll
 * backs off and retries — the loop itself never dies.
 */
@Injectable()
export class SentinelLoop {
  private running?: Promise<void>;
  private stopping = false;
  private readonly abort = new AbortController();
  private wake?: () => void;
  private lastBacklogAt = 0;
  /** When the last poll succeeded with no dependency outage in its handling (readiness). */
  lastPollOkAt = 0;

  private readonly logger: Logger;

  constructor(
    @Inject(EVENT_SOURCE) private readonly source: SentinelEventSource,
    private readonly service: SentinelService,
    private readonly metrics: SentinelMetrics,
    @Inject(LOGGER) logger: Logger,
    @Inject(LOOP_OPTIONS) private readonly options: SentinelLoopOptions,
  ) {
    this.logger = logger.child({ component: 'loop' });
  }

  start(): void {
    this.running ??= this.run();
  }

  /** Stops reading, lets the batch in hand finish and commit, then returns. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    this.wake?.();
    await this.running;
  }

  /**
   * One poll -> handle -> commit round; returns how many events were handled (observed or
   * duplicate) and whether a handler failed for a dependency outage (`isRetryable`): those events
   * go back to the source uncounted (`retryLater`), and the round does not count as a good poll
   * for readiness.
   */
  async runOnce(): Promise<{ polled: number; handled: number; outage: boolean }> {
    const events = await this.source.poll(this.abort.signal);
    // Handled as one batch: the observation writes of a poll go out in one script call (in order),
    // which is what makes a replica fast; each event's dedup and outcome are its own.
    const results = events.length ? await this.service.handleEvents(events) : [];
    const done: CoordEvent[] = [];
    const outage: CoordEvent[] = [];
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') done.push(events[i]);
      else {
        const event = events[i];
        if (isRetryable(r.reason)) outage.push(event);
        this.metrics.handleErrors.inc({ kind: event.tx_kind });
        this.logger.warn(
          { err: r.reason, tx_id: event.tx_id, source: event.source, kind: event.tx_kind },
          'handling failed; will retry',
        );
      }
    });
    // Only what was handled is committed; a failed event stays in the source and comes back.
    if (done.length) await this.source.commit(done);
    if (outage.length) await this.source.retryLater?.(outage);
    else this.lastPollOkAt = Date.now();
    await this.updateBacklog();
    return { polled: events.length, handled: done.length, outage: outage.length > 0 };
  }

  private async updateBacklog(): Promise<void> {
    if (Date.now() - this.lastBacklogAt < 1000) return;
    this.lastBacklogAt = Date.now();
    try {
      const backlog = await this.source.backlog();
      if (backlog !== null) this.metrics.backlog.set({ source: this.source.name }, backlog);
    } catch {
      // A gauge is not worth failing a round for.
    }
  }

  private async run(): Promise<void> {
    let backoff = 0;
    while (!this.stopping) {
      let delay = 0;
      try {
        const { polled, handled, outage } = await this.runOnce();
        if (outage) {
          // A dependency is down: back off as after a failed poll, then try the kept events again.
          backoff = Math.min(this.options.maxBackoffMs ?? 5000, backoff ? backoff * 2 : 100);
          delay = backoff;
        } else {
          backoff = 0;
          if (handled < polled) delay = 100;
          else if (polled < this.options.maxBatch) delay = this.options.idleDelayMs;
        }
      } catch (err) {
        if (this.stopping) break;
        this.metrics.pollErrors.inc({ source: this.source.name });
        backoff = Math.min(this.options.maxBackoffMs ?? 5000, backoff ? backoff * 2 : 100);
        delay = backoff;
        this.logger.warn({ err, retryInMs: backoff, source: this.source.name }, 'poll failed; retrying');
      }
      if (delay && !this.stopping) await this.sleep(delay);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
