import { TAILER_VARS } from '@coordbus/config';
import { Observation, Severity, severityRank } from '../observers/line-observer';

/** The smallest quiet period accepted: 0 would close and reopen on every breach (and spin a timer). */
/** Below this the episode timer would spin (`TAILER_QUIET_MS`'s lower bound). */
export const MIN_QUIET_MS = TAILER_VARS.TAILER_QUIET_MS.min;

/** An open (or just closed) stall episode. Plain JSON: it is persisted inside the checkpoint. */
export interface EpisodeState {
  /** Event time (from the lines) of the first breach, in epoch ms. */
  first_ms: number;
  /** Event time (from the lines) of the last breach, in epoch ms. */
  last_breach_ms: number;
  /** Wall-clock time the last breach was processed, in epoch ms (drives the quiet timer). */
  last_seen_wall_ms: number;
  count: number;
  peak_ms: number;
  peak_severity: Severity;
  /** The dominant stage of the peak breach. */
  dominant_stage: string | null;
  /** How often each stage dominated a breach of this episode. */
  stage_counts: Record<string, number>;
}

/**
 * Coalesces degraded and stall observations into episodes: one event per stall of the upstream,
 * not one per queued request. An episode closes once `quietMs` passes without a breach — by the
 * lines' own clock when later lines arrive (so normal traffic closes it, and a replayed backlog
 * splits into the same episodes as it did live), and by a wall-clock timer when the log goes quiet.
 */
export class EpisodeTracker {
  private open: EpisodeState | null = null;

  constructor(readonly quietMs: number) {
    if (!Number.isFinite(quietMs) || quietMs < MIN_QUIET_MS) {
      throw new RangeError(
        `quiet_ms must be at least ${MIN_QUIET_MS} ms (got ${quietMs}); 0 would make the episode timer spin`,
      );
    }
  }

  get current(): EpisodeState | null {
    return this.open;
  }

  /** Restores the episode a checkpoint carried across a restart. */
  restore(state: EpisodeState | null): void {
    this.open = state ? { ...state, stage_counts: { ...state.stage_counts } } : null;
  }

  /**
   * Feeds one observation at event time `eventMs` (its line's timestamp, or now). Returns the
   * episode it closed, if the quiet period had passed before it.
   */
  observe(obs: Observation, eventMs: number, wallMs: number): EpisodeState | null {
    let closed: EpisodeState | null = null;
    if (this.open && eventMs - this.open.last_breach_ms >= this.quietMs) {
      closed = this.open;
      this.open = null;
    }
    if (obs.severity === 'ok') return closed;
    if (!this.open) {
      this.open = {
        first_ms: eventMs,
        last_breach_ms: eventMs,
        last_seen_wall_ms: wallMs,
        count: 0,
        peak_ms: -1,
        peak_severity: obs.severity,
        dominant_stage: obs.dominantStage,
        stage_counts: {},
      };
    }
    const ep = this.open;
    ep.count++;
    // Lines can arrive slightly out of order (several writer threads): never move time backwards.
    if (eventMs > ep.last_breach_ms) ep.last_breach_ms = eventMs;
    ep.last_seen_wall_ms = Math.max(ep.last_seen_wall_ms, wallMs);
    if (obs.durationMs > ep.peak_ms) {
      ep.peak_ms = obs.durationMs;
      ep.dominant_stage = obs.dominantStage;
    }
    if (severityRank(obs.severity) > severityRank(ep.peak_severity)) ep.peak_severity = obs.severity;
    if (obs.dominantStage) ep.stage_counts[obs.dominantStage] = (ep.stage_counts[obs.dominantStage] ?? 0) + 1;
    return closed;
  }

  /** Wall-clock time at which the open episode becomes quiet, or null when none is open. */
  dueAt(): number | null {
    return this.open ? this.open.last_seen_wall_ms + this.quietMs : null;
  }

  /** Closes the open episode if `quietMs` of wall-clock time passed since its last breach. */
  closeIfQuiet(wallMs: number): EpisodeState | null {
    const due = this.dueAt();
    if (due === null || wallMs < due) return null;
    return this.flush();
  }

  /** Closes the open episode now (shutdown). */
  flush(): EpisodeState | null {
    const ep = this.open;
    this.open = null;
    return ep;
  }
}
