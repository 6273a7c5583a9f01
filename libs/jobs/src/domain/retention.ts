import type { JobStatus } from '@coordbus/envelope';
import { ACTIVE_JOB_STATUSES, isTerminal } from './job';

/** The slice of a job retention looks at. */
export interface RetentionJob {
  id: string;
  worktree: string | null;
  status: JobStatus;
  created_at_ms: number;
  started_at_ms: number | null;
  finished_at_ms: number | null;
  /** Per-job overrides (null = the policy's). */
  keep_last: number | null;
  retention_ms: number | null;
  /** Whether the process that runs it (replica or CLI) is known to be alive; only read for active jobs. */
  runner_alive: boolean;
}

export interface RetentionPolicy {
  /** Newest terminal jobs kept per worktree whatever their age (a floor). */
  keepLast: number;
  /** Terminal jobs older than this (since they finished) are removed, floor permitting. */
  retentionMs: number;
  /** A running job whose runner is gone for this long (since it started) is marked crashed. */
  staleRunningAfterMs: number;
}

/** Overrides given to one prune run (`jobs prune --retention/--keep-last`); they beat per-job values. */
export interface RetentionOverride {
  keepLast?: number;
  retentionMs?: number;
}

export interface RetentionInput {
  jobs: RetentionJob[];
  policy: RetentionPolicy;
  override?: RetentionOverride;
  nowMs: number;
}

export interface RetentionDecision {
  /** Terminal jobs to delete (metadata and log stream together). */
  evict: { id: string; reason: string }[];
  /** Active jobs whose runner is gone: to be marked `crashed`. */
  markCrashed: { id: string; reason: string }[];
  /** How many jobs stay. */
  kept: number;
}

/**
 * Decides what a prune does, from a snapshot: pure, no I/O, no clock. Active jobs are never
 * evicted; a stale active job (runner gone, started long enough ago) is marked crashed instead,
 * and may be evicted by a later pass once terminal. Terminal jobs are evicted when older than
 * their retention unless they are among the newest `keep_last` of their worktree.
 */
export function retention(input: RetentionInput): RetentionDecision {
  const { policy, override = {}, nowMs } = input;
  const evict: RetentionDecision['evict'] = [];
  const markCrashed: RetentionDecision['markCrashed'] = [];

  const byWorktree = new Map<string, RetentionJob[]>();
  for (const job of input.jobs) {
    if (ACTIVE_JOB_STATUSES.includes(job.status)) {
      const since = job.started_at_ms ?? job.created_at_ms;
      if (job.status !== 'queued' && !job.runner_alive && nowMs - since >= policy.staleRunningAfterMs) {
        markCrashed.push({ id: job.id, reason: 'stale: its runner is gone' });
      }
      continue;
    }
    if (!isTerminal(job.status)) continue;
    const key = job.worktree ?? '\u0000';
    const list = byWorktree.get(key) ?? [];
    list.push(job);
    byWorktree.set(key, list);
  }

  for (const list of byWorktree.values()) {
    // Newest first; ties broken by id (ULIDs sort by creation).
    list.sort((a, b) => ended(b) - ended(a) || (a.id < b.id ? 1 : -1));
    list.forEach((job, rank) => {
      const keepLast = override.keepLast ?? job.keep_last ?? policy.keepLast;
      if (rank < keepLast) return;
      const limit = override.retentionMs ?? job.retention_ms ?? policy.retentionMs;
      const age = nowMs - ended(job);
      if (age > limit)
        evict.push({
          id: job.id,
          reason: `finished ${Math.round(age / 1000)}s ago (retention ${Math.round(limit / 1000)}s)`,
        });
    });
  }
  return { evict, markCrashed, kept: input.jobs.length - evict.length };
}

function ended(job: RetentionJob): number {
  return job.finished_at_ms ?? job.started_at_ms ?? job.created_at_ms;
}
