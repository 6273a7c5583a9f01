import { hostname } from 'node:os';
import { Inject, Injectable, Optional } from '@nestjs/common';
import { liveEnvelope } from '@coordbus/coord';
import { CoordEvent, CoordOpEnvelope, SentinelObservation } from '@coordbus/envelope';
import { SentinelMetrics } from './metrics';
import { ObservationRepository } from './observations/observation.repository';
import { toObservation } from './observations/summary';
import { CLOCK, REPORTER } from './tokens';

export type HandleOutcome = 'observed' | 'duplicate';

/**
 * The sentinel's business logic for one coord event: stamp `ingress_ts`, write its observation
 * exactly once per `(source, tx_id)` (across restarts and replicas: the repository's script is
 * the arbiter), and count it. It knows nothing of where events come from.
 */
@Injectable()
export class SentinelService {
  private readonly lagBySource = new Map<string, { observe(v: number): void }>();

  constructor(
    private readonly observations: ObservationRepository,
    private readonly metrics: SentinelMetrics,
    @Optional() @Inject(CLOCK) private readonly clock: () => number = Date.now,
    @Optional() @Inject(REPORTER) private readonly reporter = { host: hostname(), pid: process.pid },
  ) {}

  async handleEvent(event: CoordEvent): Promise<HandleOutcome> {
    // A state change nobody typed (cull, forced release, ...) goes to the live views too. Both
    // writes are once-only on their own, so a redelivery after a crash between them completes
    // the missing one and duplicates neither.
    const now = this.clock();
    const live = this.stamp(event, now, new Date(now).toISOString());
    if (live) await this.observations.ingestOnce(event.source, event.tx_id, live);
    const { written } = await this.observations.recordOnce(toObservation(event));
    return this.count(event, written);
  }

  /**
   * {@link handleEvent} for a batch, one result per event, in order, in two script calls instead
   * of one or two per event: the live-view envelopes of the batch, then the observations of every
   * event whose envelope is written (or that has none). An event that cannot be stamped or
   * encoded fails alone; a failed call fails the events it carried (retried: the markers make
   * each write happen once). Per event the order stays envelope, then observation.
   */
  async handleEvents(events: readonly CoordEvent[]): Promise<PromiseSettledResult<HandleOutcome>[]> {
    const results: PromiseSettledResult<HandleOutcome>[] = new Array(events.length);
    const lives: { at: number; source: string; txId: string; env: CoordOpEnvelope }[] = [];
    // One "seen" time for the batch: the events of one poll were seen together.
    const now = this.clock();
    const ingressTs = new Date(now).toISOString();
    events.forEach((event, at) => {
      try {
        const env = this.stamp(event, now, ingressTs);
        if (env) lives.push({ at, source: event.source, txId: event.tx_id, env });
      } catch (err) {
        results[at] = { status: 'rejected', reason: err };
      }
    });
    if (lives.length) {
      const written = await this.settleAll(() => this.observations.ingestMany(lives), lives.length);
      written.forEach((r, i) => {
        if (r instanceof Error) results[lives[i].at] = { status: 'rejected', reason: r };
      });
    }
    const todo: number[] = [];
    const observations: SentinelObservation[] = [];
    events.forEach((event, at) => {
      if (results[at]) return;
      try {
        observations.push(toObservation(event));
        todo.push(at);
      } catch (err) {
        results[at] = { status: 'rejected', reason: err };
      }
    });
    const recorded = await this.settleAll(() => this.observations.recordMany(observations), todo.length);
    recorded.forEach((r, i) => {
      const at = todo[i];
      results[at] =
        r instanceof Error
          ? { status: 'rejected', reason: r }
          : { status: 'fulfilled', value: this.count(events[at], r.written) };
    });
    return results;
  }

  /** Stamps `ingress_ts`, observes the lag; returns the event's live-view envelope, if it has one. */
  private stamp(event: CoordEvent, now: number, ingressTs: string): CoordOpEnvelope | undefined {
    // "When we saw it", next to the source's "when it happened" (seed 002 RFC question 2).
    event.ingress_ts = ingressTs;
    const lagMs = now - Date.parse(event.ts);
    if (Number.isFinite(lagMs)) this.lag(event.source).observe(Math.max(0, lagMs) / 1000);
    return liveEnvelope(event, this.reporter);
  }

  private count(event: CoordEvent, written: boolean): HandleOutcome {
    if (!written) {
      this.metrics.duplicates.inc({ kind: event.tx_kind });
      return 'duplicate';
    }
    this.metrics.handled.inc({ kind: event.tx_kind });
    return 'observed';
  }

  /** A call that failed as a whole (connection lost, script error) fails each of its items with that error. */
  private async settleAll<R>(run: () => Promise<(R | Error)[]>, n: number): Promise<(R | Error)[]> {
    if (!n) return [];
    try {
      return await run();
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      return new Array<R | Error>(n).fill(e);
    }
  }

  /** The lag histogram's child per source, bound once (a label lookup per event costs more than the rest). */
  private lag(source: string): { observe(v: number): void } {
    let child = this.lagBySource.get(source);
    if (!child) {
      child = this.metrics.eventLag.labels({ source });
      this.lagBySource.set(source, child);
    }
    return child;
  }
}
