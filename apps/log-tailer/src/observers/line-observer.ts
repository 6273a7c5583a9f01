import type { TelemetryStatus } from '@coordbus/envelope';

/** How bad one observation is: `ok` below the threshold, `degraded` from it, `stall` from 4x it. */
export type Severity = TelemetryStatus;

/** What an observer extracts from one log line. */
export interface Observation {
  /** The line's own timestamp (epoch ms), or null when the line carries none. */
  timeMs: number | null;
  /** The measured duration in milliseconds, exactly as the line wrote it. */
  durationMs: number;
  severity: Severity;
  /** The stage that dominated the duration, when the observer knows one. */
  dominantStage: string | null;
  /** Observer-specific fields copied into the telemetry event's `detail` (may be built lazily). */
  readonly detail: Record<string, unknown>;
}

/**
 * The one upstream-specific seam of the tailer: turns a log line into an observation, or null
 * for lines it does not recognise. It must never throw on bad input (malformed JSON, missing
 * fields, nulls): those lines give null.
 */
export interface LineObserver {
  readonly name: string;
  observe(line: string): Observation | null;
}

export interface ObserverOptions {
  /** Breach threshold in ms: `degraded` from it, `stall` from 4x it. */
  thresholdMs: number;
}

/** Severity of a duration against a threshold (the same rule for every observer). */
export function severityOf(durationMs: number, thresholdMs: number): Severity {
  if (durationMs >= thresholdMs * 4) return 'stall';
  if (durationMs >= thresholdMs) return 'degraded';
  return 'ok';
}

const RANK: Record<Severity, number> = { ok: 0, degraded: 1, stall: 2 };

/** Orders severities (`ok` < `degraded` < `stall`). */
export function severityRank(severity: Severity): number {
  return RANK[severity];
}
