import { JOB_STATUSES, JobStatus, TERMINAL_JOB_STATUSES } from '@coordbus/envelope';

/** What a job is asked to do. Never carries secret env values (see env-scrub). */
export interface JobSpec {
  name: string;
  hook: string;
  worktree: string | null;
  tags: string[];
  /** argv[0] is the program; with `shell`, argv is one string run by `/bin/sh -c`. */
  argv: string[];
  shell: boolean;
  cwd: string | null;
  /** Non-secret environment additions. */
  env: Record<string, string>;
  /** Names (never values) of the secret variables the process receives. */
  secret_names: string[];
  timeout_ms: number | null;
  /** Keep every nth stdout/stderr record (1 = keep all). */
  sample_every: number;
  /** Per-job retention overrides (null = the policy's). */
  keep_last: number | null;
  retention_ms: number | null;
  background: boolean;
  /**
   * What the process reads on stdin (a hook job: the agent's hook event JSON, bounded, secrets
   * scrubbed as in argv); absent/null = nothing (stdin is /dev/null).
   */
  stdin?: string | null;
}

/** A job's metadata record: the system of record for `jobs ls`, cancel, retention. */
export interface JobMeta extends JobSpec {
  id: string;
  invocation_id: string;
  status: JobStatus;
  exit_code: number | null;
  signal: string | null;
  reason: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  /** Where and by whom it runs: host, runner id (replica or CLI), runner pid + start time. */
  host: string | null;
  runner_id: string | null;
  runner_pid: number | null;
  runner_start: string | null;
  /** The job's process group (pid == pgid: each job leads its own group) and its start time. */
  pgid: number | null;
  proc_start: string | null;
  kill_grace_ms: number | null;
}

/** The fields of a job's lifecycle events that never change after it is created (no secrets). */
export type JobEventIdentityField = 'invocation_id' | 'hook' | 'name' | 'worktree' | 'tags';
export type JobEventIdentity = Pick<JobMeta, JobEventIdentityField>;

/** A job's event identity, as its BullMQ job carries it. */
export function eventIdentity(meta: JobMeta): JobEventIdentity {
  const { invocation_id, hook, name, worktree, tags } = meta;
  return { invocation_id, hook, name, worktree, tags };
}

export const ACTIVE_JOB_STATUSES: readonly JobStatus[] = ['queued', 'running', 'cancelling'];

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_JOB_STATUSES.includes(status);
}

export function isJobStatus(s: string): s is JobStatus {
  return (JOB_STATUSES as readonly string[]).includes(s);
}

/** Cancel / ls predicates; every given one must hold (AND). */
export interface JobFilter {
  hook?: string;
  worktree?: string;
  tag?: string;
  /** Invocation id prefix (case-insensitive: ULIDs are case-insensitive). */
  inv?: string;
  /** Only jobs created at least this long ago. */
  olderThanMs?: number;
  status?: JobStatus;
}

/** True when at least one predicate is set: a cancel needs a job, a filter or `--all`. */
export function hasFilter(f: JobFilter): boolean {
  return (
    f.hook !== undefined ||
    f.worktree !== undefined ||
    f.tag !== undefined ||
    f.inv !== undefined ||
    f.olderThanMs !== undefined ||
    f.status !== undefined
  );
}

export function matchesFilter(job: JobMeta, f: JobFilter, nowMs: number): boolean {
  if (f.hook !== undefined && job.hook !== f.hook) return false;
  if (f.worktree !== undefined && job.worktree !== f.worktree) return false;
  if (f.tag !== undefined && !job.tags.includes(f.tag)) return false;
  if (f.inv !== undefined && !job.invocation_id.toUpperCase().startsWith(f.inv.toUpperCase())) return false;
  if (f.olderThanMs !== undefined && nowMs - Date.parse(job.created_at) < f.olderThanMs) return false;
  if (f.status !== undefined && job.status !== f.status) return false;
  return true;
}
