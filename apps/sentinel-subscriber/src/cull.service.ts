import { Inject, Injectable, Optional } from '@nestjs/common';
import type { Logger } from 'pino';
import { LOGGER } from '@coordbus/runtime';
import { SentinelMetrics } from './metrics';
import { SESSION_EVICTOR, SESSION_TTL_SEED_MS } from './tokens';

/** What the cull needs from coord state (CoordStore provides it; the eviction script is the arbiter). */
export interface SessionEvictor {
  /** Candidates: sessions whose last heartbeat is older than the deployment's session TTL (stored in Redis). */
  expiredSessions(): Promise<string[]>;
  /** Atomically re-checks against the stored TTL and evicts (`session.dereg` ttl-expired + `lock.release` owner-evicted). */
  evictIfExpired(
    sessionId: string,
  ): Promise<{ evicted: true; releasedLocks: string[] } | { evicted: false; reason: string }>;
  /** Stores the TTL only when none is stored yet; true when it did. */
  seedSessionTtl(ms: number): Promise<boolean>;
}

/**
 * Liveness culling: every `intervalMs` (with jitter, so replicas do not run in lockstep) it asks
 * for sessions whose last heartbeat is older than the session TTL and evicts each one. Several
 * replicas may try the same session; the coord eviction script re-checks the heartbeat and only
 * one caller ever sees `evicted: true`, so each session is culled exactly once. A session that
 * heartbeats is never a candidate, and if it heartbeats between listing and eviction the script
 * finds it live and leaves it alone.
 */
@Injectable()
export class CullService {
  private timer?: NodeJS.Timeout;
  private pass?: Promise<unknown>;
  private stopped = false;
  private seeded = false;
  private readonly logger: Logger;

  /**
   * @param seedTtlMs COORD_SESSION_TTL when the deployment sets it: stored as the deployment's
   * session TTL if none is stored yet (first start), never over a `coordbus config set`.
   */
  constructor(
    @Inject(SESSION_EVICTOR) private readonly evictor: SessionEvictor,
    @Optional() @Inject(SESSION_TTL_SEED_MS) private readonly seedTtlMs: number | undefined,
    private readonly metrics: SentinelMetrics,
    @Inject(LOGGER) logger: Logger,
  ) {
    this.logger = logger.child({ component: 'cull' });
  }

  /** Seeds the stored session TTL from the deployment's setting, once per process. */
  async seed(): Promise<void> {
    if (this.seeded || this.seedTtlMs === undefined) return;
    if (await this.evictor.seedSessionTtl(this.seedTtlMs)) {
      this.logger.info({ session_ttl_ms: this.seedTtlMs }, 'session TTL stored from COORD_SESSION_TTL');
    }
    this.seeded = true;
  }

  /** One pass; returns the sessions this replica evicted. */
  async cullOnce(): Promise<{ evicted: string[]; locksReleased: number }> {
    await this.seed();
    const evicted: string[] = [];
    let locksReleased = 0;
    for (const id of await this.evictor.expiredSessions()) {
      if (this.stopped) break;
      const r = await this.evictor.evictIfExpired(id);
      if (!r.evicted) continue;
      evicted.push(id);
      locksReleased += r.releasedLocks.length;
      this.metrics.culls.inc();
      this.metrics.cullLocks.inc(r.releasedLocks.length);
      this.logger.warn(
        { session: id, locks: r.releasedLocks },
        'session culled: heartbeat older than the session TTL',
      );
    }
    return { evicted, locksReleased };
  }

  start(intervalMs: number): void {
    const schedule = () => {
      if (this.stopped) return;
      const jitter = 0.75 + Math.random() * 0.5;
      this.timer = setTimeout(() => {
        this.pass = this.cullOnce()
          .catch((err: unknown) => {
            this.metrics.cullErrors.inc();
            this.logger.warn({ err }, 'cull pass failed; retrying next interval');
          })
          .finally(schedule);
      }, intervalMs * jitter);
    };
    schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.pass;
  }
}
