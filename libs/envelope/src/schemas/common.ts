import { ValidationOptions, registerDecorator, ValidationArguments } from 'class-validator';

/** Strict RFC 3339 / ISO 8601 timestamp check used by every schema's `ts`. */
export const ISO_OPTIONS = { strict: true, strictSeparator: true } as const;

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
