import { EnvReader, JOBS_VARS as V } from '@coordbus/config';
import { parseWorkspaceRoots } from '@coordbus/jobs';

/** The job-coordinator's own settings (besides BaseConfig). */
export interface JobsConfig {
  /** `JOBS_CONCURRENCY`: jobs one replica runs at once (default 4). */
  concurrency: number;
  /** `JOBS_CGROUP`: each job in a cgroup v2 of its own where that is possible (default on). */
  cgroup: boolean;
  /** `JOBS_NATIVE_SPAWN`: jobs started with the spawn addon where it was built (default on). */
  nativeSpawn: boolean;
  /** `JOBS_NICE`: CPU niceness of the job processes and their spawner (default 10). */
  nice: number;
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
  /** `JOBS_LOG_LINE_MAX_BYTES`: a stored log line keeps this many bytes, the rest is dropped with a marker (default 16 KiB). */
  logLineMaxBytes: number;
  /** `JOBS_LOG_MAX_BYTES`: stored output per job; past it lines are counted on the job, not stored (default 16 MiB). */
  logMaxBytes: number;
  /** `JOBS_SHUTDOWN_GRACE`: on SIGTERM, running jobs get this long before they are cancelled (default 10s). */
  shutdownGraceMs: number;
  /** `JOBS_WORKSPACE_ROOTS`: directories (`:`-separated) jobs may run in; unset: anywhere (`/`). */
  workspaceRoots: string[];
}

export function jobsConfig(env: EnvReader): JobsConfig {
  return {
    concurrency: env.get(V.JOBS_CONCURRENCY),
    cgroup: env.get(V.JOBS_CGROUP),
    nativeSpawn: env.get(V.JOBS_NATIVE_SPAWN),
    nice: env.get(V.JOBS_NICE),
    killGraceMs: env.get(V.JOBS_KILL_GRACE),
    lockDurationMs: env.get(V.JOBS_LOCK_DURATION),
    stalledIntervalMs: env.get(V.JOBS_STALLED_INTERVAL),
    reconcileIntervalMs: env.get(V.JOBS_RECONCILE_INTERVAL),
    pruneIntervalMs: env.get(V.JOBS_PRUNE_INTERVAL),
    retentionMs: env.get(V.JOBS_RETENTION),
    keepLast: env.get(V.JOBS_KEEP_LAST),
    staleRunningAfterMs: env.get(V.JOBS_STALE_RUNNING_AFTER),
    secretTtlMs: env.get(V.JOBS_SECRET_TTL),
    logMaxLen: env.get(V.JOBS_LOG_MAX_RECORDS),
    shutdownGraceMs: env.get(V.JOBS_SHUTDOWN_GRACE),
    logLineMaxBytes: env.get(V.JOBS_LOG_LINE_MAX_BYTES),
    logMaxBytes: env.get(V.JOBS_LOG_MAX_BYTES),
    workspaceRoots: parseWorkspaceRoots(env.get(V.JOBS_WORKSPACE_ROOTS)),
  };
}
