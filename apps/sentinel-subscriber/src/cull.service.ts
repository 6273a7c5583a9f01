import { Inject, Injectable, Optional } from '@nestjs/common';
import type { Logger } from 'pino';
import { LOGGER } from '@coordbus/runtime';
import { cullIntervalFor } from './config';
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
  /** The stored session TTL (ms). */
  sessionTtl(): Promise<number>;
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

  /**
   * @param followTtl SENTINEL_CULL_INTERVAL_MS was not set: the interval is a tenth of the STORED
   * TTL, re-read at least every second (one HGET), so `coordbus config set session-ttl 10s` culls
   * within seconds rather than at the interval derived from the TTL this process started with.
   */
  start(intervalMs: number, followTtl = false): void {
    let interval = intervalMs;
    let lastPass = Date.now();
    const schedule = () => {
      if (this.stopped) return;
      const jitter = 0.75 + Math.random() * 0.5;
      const wait = followTtl ? Math.min(interval * jitter, 1000) : interval * jitter;
      this.timer = setTimeout(() => {
        this.pass = this.tick(followTtl, lastPass, interval)
          .then((r) => {
            interval = r.interval;
            if (r.ran) lastPass = Date.now();
          })
          .catch((err: unknown) => {
            this.metrics.cullErrors.inc();
            this.logger.warn({ err }, 'cull pass failed; retrying next interval');
          })
          .finally(schedule);
      }, wait);
    };
    schedule();
  }

  private async tick(
    followTtl: boolean,
    lastPass: number,
    interval: number,
  ): Promise<{ ran: boolean; interval: number }> {
    if (followTtl) {
      interval = cullIntervalFor(await this.evictor.sessionTtl());
      if (Date.now() - lastPass < interval * 0.75) return { ran: false, interval };
    }
    await this.cullOnce();
    return { ran: true, interval };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.pass;
  }
}
