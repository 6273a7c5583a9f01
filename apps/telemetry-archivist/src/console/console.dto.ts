import { IsIn, IsOptional, IsString, Matches, MaxLength, MinLength } from 'class-validator';

const SESSION = /^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}$/;
const SESSION_MSG = 'must be a session id (letters, digits and . _ : @ + -)';

export class LoginDto {
  @IsString() @MinLength(1) @MaxLength(500) token!: string;
}

export class SendMessageDto {
  @Matches(SESSION, { message: `to ${SESSION_MSG}` }) to!: string;
  @IsOptional() @IsString() @MaxLength(200) subject?: string;
  @IsString() @MinLength(1) @MaxLength(10_000) body!: string;
}

export class DispatchDto {
  @Matches(SESSION, { message: `assignee ${SESSION_MSG}` }) assignee!: string;
  @IsString() @MinLength(1) @MaxLength(200) ticket!: string;
}

export class ForceReleaseDto {
  @IsString() @MinLength(1) @MaxLength(256) resource!: string;
  /** The owner the operator saw; the release is refused if the lock changed hands since. */
  @IsOptional() @Matches(SESSION, { message: `owner ${SESSION_MSG}` }) owner?: string;
  @IsString()
  @MinLength(3, { message: 'reason must say why (at least 3 characters)' })
  @MaxLength(500)
  reason!: string;
}

export class CancelJobDto {
  @Matches(/^[A-Za-z0-9._:-]{1,100}$/, { message: 'job must be a job id' }) job!: string;
  @IsOptional() @IsString() @MaxLength(500) reason?: string;
}

export class RedriveDto {
  @IsIn(['coordIngest', 'coordEvents', 'sentinelObservations', 'telemetryEvents', 'jobEvents'])
  stream!: string;
  @Matches(/^\d{1,15}-\d{1,15}$/, { message: 'id must be a stream entry id' }) id!: string;
  @IsOptional() @IsString() @MaxLength(500) reason?: string;
}

export class TelemetryQueryDto {
  @IsOptional() @Matches(/^\d{1,3}$/, { message: 'hours must be a decimal integer' }) hours?: string;
}

export class SearchQueryDto {
  @IsString() @MinLength(1) @MaxLength(500) q!: string;
  /** The previous page's `next_cursor`. */
  @IsOptional() @IsString() @MaxLength(2000) cursor?: string;
}
