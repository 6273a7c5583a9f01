import { EnvReader } from '@coordbus/runtime';
import { JOB_DEFAULTS } from '@coordbus/jobs';

/** The job-coordinator's own settings (besides BaseConfig). */
export interface JobsConfig {
  /** `JOBS_CONCURRENCY`: jobs one replica runs at once (default 4). */
  concurrency: number;
  /** `JOBS_KILL_GRACE`: SIGTERM -> SIGKILL grace on cancel/timeout (default 5s). */
  killGraceMs: number;
  /** `JOBS_LOCK_DURATION`: BullMQ lock; a replica silent this long is considered stalled (default 30s). */
  lockDurationMs: number;
  /** `JOBS_STALLED_INTERVAL`: how often stalled jobs are looked for (default 15s). */
  stalledIntervalMs: number;
  /** `JOBS_RECONCILE_INTERVAL`: the host reconcile pass, also run at boot (default 30s). */
  reconcileIntervalMs: number;
  /** `JOBS_PRUNE_INTERVAL`: periodic retention, one replica at a time; 0 disables (default 10m). */
  pruneIntervalMs: number;
  /** `JOBS_RETENTION`: finished jobs older than this are removed (default 7d). */
  retentionMs: number;
  /** `JOBS_KEEP_LAST`: newest finished jobs kept per worktree whatever their age (default 20). */
  keepLast: number;
  /** `JOBS_STALE_RUNNING_AFTER`: a running job whose runner is gone this long is marked crashed (default 5m). */
  staleRunningAfterMs: number;
  /** `JOBS_SECRET_TTL`: how long a queued job's secrets may wait in Redis (default 24h). */
  secretTtlMs: number;
  /** `JOBS_LOG_MAX_RECORDS`: cap of one job's log stream (default 100000). */
  logMaxLen: number;
  /** `JOBS_SHUTDOWN_GRACE`: on SIGTERM, running jobs get this long before they are cancelled (default 10s). */
  shutdownGraceMs: number;
}

export function jobsConfig(env: EnvReader): JobsConfig {
  const d = JOB_DEFAULTS;
  return {
    concurrency: env.int('JOBS_CONCURRENCY', d.concurrency, { min: 1, max: 256 }),
    killGraceMs: env.durationMs('JOBS_KILL_GRACE', d.killGraceMs, { minMs: 0, maxMs: 600_000 }),
    lockDurationMs: env.durationMs('JOBS_LOCK_DURATION', d.lockDurationMs, { minMs: 1000 }),
    stalledIntervalMs: env.durationMs('JOBS_STALLED_INTERVAL', d.stalledIntervalMs, { minMs: 200 }),
    reconcileIntervalMs: env.durationMs('JOBS_RECONCILE_INTERVAL', d.reconcileIntervalMs, { minMs: 200 }),
    pruneIntervalMs: env.durationMs('JOBS_PRUNE_INTERVAL', d.pruneIntervalMs, { minMs: 0 }),
    retentionMs: env.durationMs('JOBS_RETENTION', d.retentionMs, { minMs: 0 }),
    keepLast: env.int('JOBS_KEEP_LAST', d.keepLast, { min: 0 }),
    staleRunningAfterMs: env.durationMs('JOBS_STALE_RUNNING_AFTER', d.staleRunningAfterMs, { minMs: 0 }),
    secretTtlMs: env.durationMs('JOBS_SECRET_TTL', d.secretTtlMs, { minMs: 1000 }),
    logMaxLen: env.int('JOBS_LOG_MAX_RECORDS', d.logMaxLen, { min: 100 }),
    shutdownGraceMs: env.durationMs('JOBS_SHUTDOWN_GRACE', d.shutdownGraceMs, { minMs: 0 }),
  };
}
