import { LineObserver, Observation, ObserverOptions, Severity, severityOf } from './line-observer';

/** The stages that block a request before it goes upstream; the largest one "dominates". */
export const BLOCKING_STAGES = ['read_request_json', 'deep_copy', 'compression_first_stage'] as const;

const MARKER = 'STAGE_TIMINGS';
// Python logging's default asctime: `2026-04-26 04:27:16,862` (local time, no zone).
const ASCTIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})[,.](\d{3})/;
const HR_ID = /\[(hr_[A-Za-z0-9_]+)\]/;

function finiteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function optionalString(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/**
 * Parses the leading asctime as local time (the proxy logs without a zone) to epoch ms; null if
 * absent or impossible. Building a local Date costs microseconds, and consecutive lines share
 * their second, so the last second parsed is remembered.
 */
export function parseAsctime(line: string): number | null {
  if (line.length < 23) return null;
  if (!line.startsWith(lastSecond) || lastTz !== process.env.TZ) {
    const m = ASCTIME.exec(line);
    if (!m) return null;
    const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
    const date = new Date(y, mo - 1, d, h, mi, s, 0);
    // Date rolls 2026-02-31 over into March: refuse instead of inventing a time.
    if (
      date.getFullYear() !== y ||
      date.getMonth() !== mo - 1 ||
      date.getDate() !== d ||
      date.getHours() !== h
    )
      return null;
    lastSecond = line.slice(0, 19);
    lastSecondMs = date.getTime();
    lastTz = process.env.TZ;
  }
  const sep = line.charCodeAt(19);
  if (sep !== 44 /* , */ && sep !== 46 /* . */) return null;
  const a = line.charCodeAt(20) - 48;
  const b = line.charCodeAt(21) - 48;
  const c = line.charCodeAt(22) - 48;
  if (a < 0 || a > 9 || b < 0 || b > 9 || c < 0 || c > 9) return null;
  return lastSecondMs + a * 100 + b * 10 + c;
}

// Starts as a value no line begins with, so the first line always parses.
let lastSecond = '\u0000';
let lastSecondMs = 0;
let lastTz: string | undefined;

/**
 * An observation whose `detail` is built only when asked: it is needed for breaches (a few per
 * cent of lines), and building it for every line cost a fifth of the observer's time.
 */
class StageTimingsObservation implements Observation {
  private cached: Record<string, unknown> | null = null;

  constructor(
    readonly timeMs: number | null,
    readonly durationMs: number,
    readonly severity: Severity,
    readonly dominantStage: string | null,
    private readonly body: Record<string, unknown>,
    private readonly stages: Record<string, unknown>,
    private readonly line: string,
    private readonly markerAt: number,
  ) {}

  get detail(): Record<string, unknown> {
    if (this.cached) return this.cached;
    const blocking: Record<string, number | null> = {};
    for (const stage of BLOCKING_STAGES) {
      const v = this.stages[stage];
      blocking[stage] = finiteNumber(v) ? v : null;
    }
    const hr = HR_ID.exec(this.line.slice(0, this.markerAt));
    this.cached = {
      dominant_stage: this.dominantStage,
      stages: blocking,
      path: optionalString(this.body.path),
      request_id: optionalString(this.body.request_id),
      session_id: optionalString(this.body.session_id),
      hr_id: hr ? hr[1] : null,
    };
    return this.cached;
  }

  /** The plain form (what the golden fixture records). */
  toJSON(): Observation {
    const { timeMs, durationMs, severity, dominantStage, detail } = this;
    return { timeMs, durationMs, severity, dominantStage, detail };
  }
}

/**
 * Reads the headroom proxy's `STAGE_TIMINGS {json}` lines. Reports `stages.total_pre_upstream`
 * in milliseconds exactly as written (the proxy already logs ms; scaling it was a 1000x bug in
 * the seed's history), the dominant blocking stage, and the severity against the threshold.
 */
export class HeadroomStageTimingsObserver implements LineObserver {
  static readonly observerName = 'headroom-stage-timings';
  readonly name = HeadroomStageTimingsObserver.observerName;

  constructor(private readonly options: ObserverOptions) {}

  observe(line: string): Observation | null {
    const at = line.indexOf(MARKER);
    if (at < 0) return null;
    const open = line.indexOf('{', at + MARKER.length);
    if (open < 0) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line.slice(open));
    } catch {
      return null;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
    const body = parsed as Record<string, unknown>;
    if (body.event !== undefined && body.event !== 'stage_timings') return null;
    const stages = body.stages;
    if (typeof stages !== 'object' || stages === null || Array.isArray(stages)) return null;
    const s = stages as Record<string, unknown>;
    const total = s.total_pre_upstream;
    if (!finiteNumber(total) || total < 0) return null;

    let dominant: string | null = null;
    let dominantMs = -Infinity;
    for (const stage of BLOCKING_STAGES) {
      const v = s[stage];
      if (finiteNumber(v) && v > dominantMs) {
        dominant = stage;
        dominantMs = v;
      }
    }
    return new StageTimingsObservation(
      parseAsctime(line),
      total,
      severityOf(total, this.options.thresholdMs),
      dominant,
      body,
      s,
      line,
      at,
    );
  }
}
