import { hostname } from 'node:os';
import { Inject, Injectable, Optional } from '@nestjs/common';
import { liveEnvelope } from '@coordbus/coord';
import { CoordEvent } from '@coordbus/envelope';
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
  constructor(
    private readonly observations: ObservationRepository,
    private readonly metrics: SentinelMetrics,
    @Optional() @Inject(CLOCK) private readonly clock: () => number = Date.now,
    @Optional() @Inject(REPORTER) private readonly reporter = { host: hostname(), pid: process.pid },
  ) {}

  async handleEvent(event: CoordEvent): Promise<HandleOutcome> {
    const now = this.clock();
    // "When we saw it", next to the source's "when it happened" (seed 002 RFC question 2).
    event.ingress_ts = new Date(now).toISOString();
    const lagMs = now - Date.parse(event.ts);
    if (Number.isFinite(lagMs))
      this.metrics.eventLag.observe({ source: event.source }, Math.max(0, lagMs) / 1000);
    // A state change nobody typed (cull, forced release, ...) goes to the live views too. Both
    // writes are once-only on their own, so a redelivery after a crash between them completes
    // the missing one and duplicates neither.
    const live = liveEnvelope(event, this.reporter);
    if (live) await this.observations.ingestOnce(event.source, event.tx_id, live);
    const { written } = await this.observations.recordOnce(toObservation(event));
    if (!written) {
      this.metrics.duplicates.inc({ kind: event.tx_kind });
      return 'duplicate';
    }
    this.metrics.handled.inc({ kind: event.tx_kind });
    return 'observed';
  }
}
