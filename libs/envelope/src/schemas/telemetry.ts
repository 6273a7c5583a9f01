import { IsIn, IsNumber, IsObject, IsString, Min, MinLength } from 'class-validator';
import { IsTimestamp } from './common';

export const TELEMETRY_STATUSES = ['ok', 'degraded', 'stall'] as const;
export type TelemetryStatus = (typeof TELEMETRY_STATUSES)[number];

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
