import type { JobStatus } from '@coordbus/envelope';

/** How a job's process ended, as the runner saw it. */
export interface ProcessEnd {
  exitCode: number | null;
  signal: string | null;
  /** The runner killed it because the user cancelled it. */
  cancelled: boolean;
  /** The runner killed it because it ran past its timeout. */
  timedOut: boolean;
  /** The process could not be started (errno code such as ENOENT). */
  spawnError?: string;
  /** Its exit status can never be known (why): the process that was its parent died. */
  lost?: string;
  /** Processes the job started that could not be ended with it (described for the job's record). */
  survivors?: string;
}

export interface Outcome {
  status: JobStatus;
  exit_code: number | null;
  signal: string | null;
  reason?: string;
}

/**
 * The terminal status of a job from how its process ended. A kill we asked for wins over the
 * exit it caused (a cancelled job that exits 143 is `cancelled`, not `failed`).
 */
export function outcomeOf(end: ProcessEnd): Outcome {
  const out = baseOutcome(end);
  if (end.survivors) {
    const left = `could not kill what it started: ${end.survivors}`;
    out.reason = out.reason ? `${out.reason}; ${left}` : left;
  }
  return out;
}

function baseOutcome(end: ProcessEnd): Outcome {
  const base = { exit_code: end.exitCode, signal: end.signal };
  if (end.spawnError) {
    // Shell conventions: 127 command not found, 126 found but not executable.
    const code = end.spawnError === 'ENOENT' ? 127 : 126;
    return { status: 'failed', exit_code: code, signal: null, reason: `could not start: ${end.spawnError}` };
  }
  if (end.lost) return { status: 'crashed', ...base, reason: end.lost };
  if (end.cancelled) return { status: 'cancelled', ...base, reason: 'cancelled by request' };
  if (end.timedOut) return { status: 'timed-out', ...base, reason: 'ran past its timeout' };
  if (end.signal) return { status: 'signaled', ...base, reason: `killed by ${end.signal}` };
  if (end.exitCode === 0) return { status: 'succeeded', ...base };
  return { status: 'failed', ...base, reason: `exit code ${end.exitCode}` };
}

/** Sampling keeps every nth stdout/stderr record by seq; status records are never sampled. */
export function keepRecord(seq: number, kind: 'stdout' | 'stderr' | 'status', everyNth: number): boolean {
  if (kind === 'status' || everyNth <= 1) return true;
  return seq % everyNth === 0;
}
