import {
  ValidationOptions,
  registerDecorator,
  ValidationArguments,
  isISO8601,
  isRFC3339,
} from 'class-validator';

/** Strict RFC 3339 / ISO 8601 timestamp check used by every schema's `ts`. */
export const ISO_OPTIONS = { strict: true, strictSeparator: true } as const;

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
      validator: {
        validate(value: unknown) {
          return typeof value === 'string' && isRFC3339(value) && isISO8601(value, ISO_OPTIONS);
        },
      },
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
