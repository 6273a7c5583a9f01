import { applyDecorators } from '@nestjs/common';
import { Transform } from 'class-transformer';
import {
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  ValidateBy,
} from 'class-validator';
import { parseTimePoint, TIME_POINT_FORMS } from '@coordbus/config';
import { LEVELS, TELEMETRY_STATUSES } from '@coordbus/envelope';
import { SOURCE_STREAMS } from '../ingest/row-mapper';

export const MAX_PAGE = 1000;

/**
 * A numeric query parameter: plain decimal digits only. `Number()` would also take `0x10`, `1e3`,
 * ` 16` or `0b1`; those stay strings here, so `@IsInt` refuses them with a 400.
 */
export const DecimalInt = () =>
  Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : value,
  );
export const DEFAULT_PAGE = 100;

const STREAM_KEY = `(?:${SOURCE_STREAMS.join('|')})(?::dead)?`;
const STREAM_LIST = new RegExp(`^${STREAM_KEY}(?:,${STREAM_KEY})*$`);
const LIST = /^[^,]+(,[^,]+)*$/;

/**
 * A time parameter (`since`, `until`): what `coordbus replay --since` takes (libs/config
 * `parseTimePoint`): an RFC 3339 time, epoch milliseconds, or a duration back from now (`2h`).
 */
const IsTimePoint = () =>
  ValidateBy({
    name: 'isTimePoint',
    validator: {
      validate: (value: unknown) => typeof value === 'string' && parseTimePoint(value) !== undefined,
      defaultMessage: (args) => `${args?.property ?? 'time'} must be ${TIME_POINT_FORMS}`,
    },
  });

// Class-validator decorators composed once (applyDecorators registers them in the order a
// stacked `@A @B` would, bottom first), so each kind of parameter is checked one way everywhere.

/** `limit`: 1 to MAX_PAGE, plain decimal digits. */
const PageLimit = () =>
  applyDecorators(
    Max(MAX_PAGE),
    Min(1),
    IsInt({ message: 'limit must be a decimal integer' }),
    DecimalInt(),
    IsOptional(),
  );
/** `order` of a keyset page. */
const PageOrder = () => applyDecorators(IsIn(['asc', 'desc']), IsOptional());
/** `cursor` of a keyset page (opaque, as the previous page returned it). */
const PageCursor = () => applyDecorators(MaxLength(2000), IsString(), IsOptional());
/** A free-text filter of 1 to `max` characters. */
const OptionalText = (max: number) => applyDecorators(MaxLength(max), MinLength(1), IsString(), IsOptional());

/** Query of `GET /v1/events`. Lists are comma-separated. */
export class EventsQueryDto {
  /** Stream keys: coordIngest, coordEvents, sentinelObservations, telemetryEvents, jobEvents, each optionally with :dead. */
  @IsOptional()
  @Matches(STREAM_LIST, {
    message: `stream must be a comma-separated list of ${SOURCE_STREAMS.join(', ')} (each optionally with :dead)`,
  })
  stream?: string;

  /** coord op, coord event tx_kind, observation kind, telemetry event, job status or dead-letter error code. */
  @IsOptional()
  @Matches(LIST, { message: 'kind must be a comma-separated list of names' })
  @MaxLength(2000)
  kind?: string;
  /** Alias of kind (the coord op name). */
  @IsOptional()
  @Matches(LIST, { message: 'op must be a comma-separated list of names' })
  @MaxLength(2000)
  op?: string;
  @OptionalText(500) session?: string;
  @OptionalText(1000) resource?: string;
  @IsOptional() @IsIn(LEVELS) level?: string;
  @IsOptional()
  @Matches(LIST, { message: 'status must be a comma-separated list' })
  @MaxLength(500)
  status?: string;
  @OptionalText(500) source?: string;
  /** Text search: entries holding every word of it (ticket, note, subject, resource, log line...). */
  @OptionalText(500) q?: string;
  /** Event time lower bound (inclusive): RFC 3339, epoch ms, or a duration back from now (`2h`). */
  @IsOptional() @IsTimePoint() since?: string;
  /** Event time upper bound (inclusive), in the same forms as since. */
  @IsOptional() @IsTimePoint() until?: string;
  /** Only entries whose stream entry id is <= this id (the replay seam). */
  @IsOptional()
  @Matches(/^\d{1,15}-\d{1,15}$/, { message: 'until_id must be a stream entry id like 1700000000000-0' })
  until_id?: string;
  @PageOrder() order?: 'asc' | 'desc';
  @PageCursor() cursor?: string;
  @PageLimit() limit?: number;
}

export class SessionsQueryDto {
  @IsOptional() @IsIn(['active', 'ended']) state?: 'active' | 'ended';
  /** Only sessions last seen at or after this time. */
  @IsOptional() @IsTimePoint() since?: string;
  @PageLimit() limit?: number;
}

export class EpisodesQueryDto {
  @OptionalText(500) source?: string;
  /** The observer's event (`headroom.overhead`) or its episodes' (`headroom.overhead.episode`). */
  @OptionalText(500) event?: string;
  /** Default stall,degraded. */
  @IsOptional()
  @Matches(new RegExp(`^(${TELEMETRY_STATUSES.join('|')})(,(${TELEMETRY_STATUSES.join('|')}))*$`), {
    message: `status must be a comma-separated list of ${TELEMETRY_STATUSES.join(', ')}`,
  })
  status?: string;
  @IsOptional() @IsTimePoint() since?: string;
  @IsOptional() @IsTimePoint() until?: string;
  @PageOrder() order?: 'asc' | 'desc';
  @PageCursor() cursor?: string;
  @PageLimit() limit?: number;
}
