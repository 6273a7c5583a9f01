/** Defaults shared by the service (env-configurable there) and the CLI. */
export const JOB_DEFAULTS = {
  concurrency: 4,
  killGraceMs: 5_000,
  lockDurationMs: 30_000,
  stalledIntervalMs: 15_000,
  reconcileIntervalMs: 30_000,
  pruneIntervalMs: 10 * 60_000,
  retentionMs: 7 * 86_400_000,
  keepLast: 20,
  staleRunningAfterMs: 5 * 60_000,
  secretTtlMs: 86_400_000,
  logMaxLen: 100_000,
  shutdownGraceMs: 10_000,
} as const;
