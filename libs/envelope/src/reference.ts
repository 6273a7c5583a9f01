import { plainToInstance } from 'class-transformer';
import { ValidationError, validateSync } from 'class-validator';
import { isUnionPayload, Schema } from './codec';

/**
 * Validation straight through class-validator (`plainToInstance` + `validateSync`), as the codec
 * did before it compiled the DTOs. Not used on any message path: it is the oracle the compiled
 * validators are tested against (compile.spec.ts) and the baseline bench/codec measures them by.
 */

const VALIDATOR_OPTIONS = { whitelist: true, forbidUnknownValues: true, validationError: { target: false } };

function flatten(errors: ValidationError[], parent = ''): string[] {
  const out: string[] = [];
  for (const e of errors) {
    const path = parent ? `${parent}.${e.property}` : e.property;
    if (e.constraints) out.push(`${path}: ${Object.values(e.constraints).join(', ')}`);
    if (e.children?.length) out.push(...flatten(e.children, path));
  }
  return out;
}

/** The DTO instance and every failing path (`path: message, message`) class-validator reports. */
export function validateWithClassValidator<T>(
  schema: Schema<T>,
  value: object,
): { value: T; paths: string[] } {
  const instance = plainToInstance(schema.cls, value) as Record<string, unknown>;
  const paths = flatten(validateSync(instance, VALIDATOR_OPTIONS));
  const union = schema.union;
  const tag = union && instance[union.tag];
  if (union && typeof tag === 'string' && Object.prototype.hasOwnProperty.call(union.classes, tag)) {
    const payload = instance[union.property];
    if (isUnionPayload(payload)) {
      const typed = plainToInstance(union.classes[tag], payload);
      const more = flatten(validateSync(typed, VALIDATOR_OPTIONS), union.property);
      if (!more.length) instance[union.property] = typed;
      paths.push(...more);
    }
  }
  return { value: instance as T, paths };
}
