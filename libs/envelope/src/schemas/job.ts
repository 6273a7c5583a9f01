import { IsArray, IsIn, IsInt, IsOptional, IsString, Min, MinLength, ValidateIf } from 'class-validator';
import { IsNullableString, IsTimestamp } from './common';

export const JOB_STATUSES = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'signaled',
  'cancelling',
  'cancelled',
  'timed-out',
  'skipped',
  'crashed',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Statuses a job never leaves. Exactly one terminal status record is written per job. */
export const TERMINAL_JOB_STATUSES: readonly JobStatus[] = [
  'succeeded',
  'failed',
  'signaled',
  'cancelled',
  'timed-out',
  'skipped',
  'crashed',
];

export const JOB_LOG_KINDS = ['stdout', 'stderr', 'status'] as const;
export type JobLogKind = (typeof JOB_LOG_KINDS)[number];

/**
 * One record of a job's structured log (seed 003): `seq` is monotonic per job and keeps counting
 * through sampled-out lines, so gaps show what was dropped. stdout/stderr records carry `line`;
 * status records carry `status` (and `exit_code`, `signal`, `reason` when they apply).
 */
export class JobLogRecord {
  @IsInt() @Min(1) seq!: number;
  @IsTimestamp() ts!: string;
  @IsIn(JOB_LOG_KINDS) kind!: JobLogKind;
  // Required by its kind; when present on the other kind it must still be well-typed, since the
  // whitelist keeps it and a consumer would otherwise read a bogus value.
  @ValidateIf((o: JobLogRecord) => o.kind !== 'status' || o.line !== undefined) @IsString() line?: string;
  @ValidateIf((o: JobLogRecord) => o.kind === 'status' || o.status !== undefined)
  @IsIn(JOB_STATUSES)
  status?: JobStatus;
  @IsOptional() @IsInt() exit_code?: number | null;
  @IsOptional() @IsNullableString() signal?: string | null;
  @IsOptional() @IsString() reason?: string;
}

/** A job lifecycle change, on the job events stream for the archivist. Never carries env values. */
export class JobEvent {
  @IsString() @MinLength(1) job_id!: string;
  @IsString() @MinLength(1) invocation_id!: string;
  @IsString() @MinLength(1) hook!: string;
  @IsString() name!: string;
  @IsNullableString() worktree!: string | null;
  @IsArray() @IsString({ each: true }) tags!: string[];
  @IsIn(JOB_STATUSES) status!: JobStatus;
  @ValidateIf((_o, v) => v !== null) @IsInt() exit_code!: number | null;
  @IsNullableString() signal!: string | null;
  @IsOptional() @IsString() reason?: string;
  @IsString() host!: string;
  @IsTimestamp() ts!: string;
}
