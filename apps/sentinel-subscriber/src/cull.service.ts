import type { Logger } from 'pino';
import { SentinelMetrics } from './metrics';

/** What the cull needs from coord state (CoordStore provides it; the eviction script is the arbiter). */
export interface SessionEvictor {
  /** Candidates: sessions whose last heartbeat is older than `ttlMs`. */
  expiredSessions(ttlMs: number): Promise<string[]>;
  /** Atomically re-checks and evicts (`session.dereg` ttl-expired + `lock.release` owner-evicted). */
  evictIfExpired(
    sessionId: string,
    ttlMs: number,
  ): Promise<{ evicted: true; releasedLocks: string[] } | { evicted: false; reason: string }>;
}

/**
 * Liveness culling: every `intervalMs` (with jitter, so replicas do not run in lockstep) it asks
 * for sessions whose last heartbeat is older than the session TTL and evicts each one. Several
 * replicas may try the same session; the coord eviction script re-checks the heartbeat and only
 * one caller ever sees `evicted: true`, so each session is culled exactly once. A session that
 * heartbeats is never a candidate, and if it heartbeats between listing and eviction the script
 * finds it live and leaves it alone.
 */
export class CullService {
  private timer?: NodeJS.Timeout;
  private pass?: Promise<unknown>;
  private stopped = false;

  constructor(
    private readonly evictor: SessionEvictor,
    private readonly ttlMs: number,
    private readonly metrics: SentinelMetrics,
    private readonly logger: Logger,
  ) {}

  /** One pass; returns the sessions this replica evicted. */
  async cullOnce(): Promise<{ evicted: string[]; locksReleased: number }> {
    const evicted: string[] = [];
    let locksReleased = 0;
    for (const id of await this.evictor.expiredSessions(this.ttlMs)) {
      if (this.stopped) break;
      const r = await this.evictor.evictIfExpired(id, this.ttlMs);
      if (!r.evicted) continue;
      evicted.push(id);
      locksReleased += r.releasedLocks.length;
      this.metrics.culls.inc();
      this.metrics.cullLocks.inc(r.releasedLocks.length);
      this.logger.info(
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
