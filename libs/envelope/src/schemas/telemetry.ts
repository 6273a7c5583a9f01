import { IsIn, IsNumber, IsObject, IsString, Min, MinLength } from 'class-validator';
import { IsTimestamp } from './common';

export const TELEMETRY_STATUSES = ['ok', 'degraded', 'stall'] as const;
export type TelemetryStatus = (typeof TELEMETRY_STATUSES)[number];

/**
 * What a telemetry event reports, in `detail.kind`: one line over the threshold (`breach`), or a
 * closed stall episode coalescing the breaches until the log went quiet (`episode`).
 */
export const TELEMETRY_KINDS = ['breach', 'episode'] as const;
export type TelemetryKind = (typeof TELEMETRY_KINDS)[number];

/**
 * An episode's `event` is its observer's event plus this suffix (`headroom.overhead.episode`),
 * so readers that only see the event name (the archive's `kind` column, `telemetry.<event>`
 * subscribers) tell episodes from breaches without parsing `detail`.
 */
export const TELEMETRY_EPISODE_SUFFIX = '.episode';

/** The event name of the episodes of `event` (unchanged when it already names episodes). */
export function episodeEventName(event: string): string {
  return event.endsWith(TELEMETRY_EPISODE_SUFFIX) ? event : `${event}${TELEMETRY_EPISODE_SUFFIX}`;
}

/**
 * A telemetry event (seed 004). Consumers are idempotent on `(source, event, ts, duration_ms)`.
 * `detail` carries observer-specific fields (dominant stage, episode count and peak, ...).
 */
export class TelemetryEvent {
  @IsString() @MinLength(1) source!: string;
  @IsString() @MinLength(1) event!: string;
  @IsIn(TELEMETRY_STATUSES) status!: TelemetryStatus;
  @IsNumber({ allowNaN: false, allowInfinity: false }) @Min(0) duration_ms!: number;
  @IsObject() detail!: Record<string, unknown>;
  @IsTimestamp() ts!: string;
}
