import {
  ValidationOptions,
  registerDecorator,
  ValidationArguments,
  ValidatorConstraint,
  ValidatorConstraintInterface,
  isISO8601,
} from 'class-validator';
import type { TextShape } from '../compile';

/** Strict RFC 3339 / ISO 8601 timestamp check used by every schema's `ts`. */
export const ISO_OPTIONS = { strict: true, strictSeparator: true } as const;

// isRFC3339(v) && isISO8601(v, ISO_OPTIONS) in one pass: the RFC 3339 shape with an upper-case
// `T` and seconds 00-59 (what the strict ISO check adds), then a day that exists in its month.
// common.spec.ts holds it to the pair of validator.js checks. No `"`, `\` or control character
// can match the shape, so it also describes the timestamp's JSON text (see TextShape).
const TIMESTAMP_SHAPE =
  '\\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\\d|3[01])T(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d+)?(?:[zZ]|[-+](?:[01]\\d|2[0-3]):[0-5]\\d)';
const TIMESTAMP = new RegExp(`^${TIMESTAMP_SHAPE}$`);
const DAYS_IN_MONTH = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Whether `value` is a timestamp {@link IsTimestamp} accepts. */
export function isTimestamp(value: unknown): boolean {
  return typeof value === 'string' && TIMESTAMP.test(value) && dayExists(value);
}

/** The rest of {@link isTimestamp} for a string of the timestamp's shape: whether its day exists. */
function dayExists(value: string): boolean {
  // Fixed positions once the shape matched: YYYY-MM-DD (read without allocating a match).
  const digit = (i: number) => value.charCodeAt(i) - 48;
  const year = digit(0) * 1000 + digit(1) * 100 + digit(2) * 10 + digit(3);
  // validator.js checks the day with new Date(`${year}-MM-DD`), which for years below 1000 is no
  // ISO date but V8's legacy parse: keep its verdict rather than guess it.
  if (year < 1000) return isISO8601(value, ISO_OPTIONS);
  const day = digit(8) * 10 + digit(9);
  if (day <= 28) return true;
  const month = digit(5) * 10 + digit(6);
  if (month !== 2) return day <= DAYS_IN_MONTH[month];
  return day === 29 && ((year % 4 === 0 && year % 100 !== 0) || year % 400 === 0);
}

/**
 * IsTimestamp's constraint. A class rather than registerDecorator's `validator` object, whose
 * wrapper would hide `textShape`: the text reader (compile.ts) matches a `ts` in the text with the
 * shape and then checks only the day, as the full check's regular expression on every fresh
 * string cost ~7 % of a coord-op decode.
 */
@ValidatorConstraint({ name: 'isTimestamp', async: false })
export class IsTimestampConstraint implements ValidatorConstraintInterface {
  readonly textShape: TextShape = { pattern: TIMESTAMP_SHAPE, rest: dayExists };

  validate(value: unknown): boolean {
    return isTimestamp(value);
  }
}

/**
 * A timestamp every schema's `ts` must carry: an RFC 3339 date-time with a zone offset
 * (`2026-04-07T12:34:56.789Z`), i.e. strict ISO 8601 minus the ambiguous forms (a bare date,
 * no offset, the basic `20260407T...` format) that would sort or compare wrongly downstream.
 */
export function IsTimestamp(options?: ValidationOptions): PropertyDecorator {
  return (object: object, propertyName: string | symbol) => {
    registerDecorator({
      name: 'isTimestamp',
      target: object.constructor,
      propertyName: propertyName as string,
      options: {
        message: `${String(propertyName)} must be an RFC 3339 timestamp with a zone offset (e.g. 2026-04-07T12:34:56.789Z)`,
        ...options,
      },
      validator: IsTimestampConstraint,
    });
  };
}

/** Accepts `null` or a string (class-validator's IsOptional also lets `undefined` through, which we refuse). */
export function IsNullableString(options?: ValidationOptions): PropertyDecorator {
  return (object: object, propertyName: string | symbol) => {
    registerDecorator({
      name: 'isNullableString',
      target: object.constructor,
      propertyName: propertyName as string,
      options: { message: `${String(propertyName)} must be a string or null`, ...options },
      validator: {
        validate(value: unknown, _args: ValidationArguments) {
          return value === null || typeof value === 'string';
        },
      },
    });
  };
}

/** Any JSON value except `undefined` (for free-form blobs). */
export function IsJsonValue(options?: ValidationOptions): PropertyDecorator {
  return (object: object, propertyName: string | symbol) => {
    registerDecorator({
      name: 'isJsonValue',
      target: object.constructor,
      propertyName: propertyName as string,
      options: { message: `${String(propertyName)} must be a JSON value`, ...options },
      validator: {
        validate(value: unknown) {
          return value !== undefined && typeof value !== 'function' && typeof value !== 'symbol';
        },
      },
    });
  };
}

/** A flat object of string values (stream-entry fields as Redis returns them). */
export function IsStringRecord(options?: ValidationOptions): PropertyDecorator {
  return (object: object, propertyName: string | symbol) => {
    registerDecorator({
      name: 'isStringRecord',
      target: object.constructor,
      propertyName: propertyName as string,
      options: { message: `${String(propertyName)} must map field names to strings`, ...options },
      validator: {
        validate(value: unknown) {
          return (
            typeof value === 'object' &&
            value !== null &&
            !Array.isArray(value) &&
            Object.values(value).every((v) => typeof v === 'string')
          );
        },
      },
    });
  };
}
