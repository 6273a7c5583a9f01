import { compileClass, CompiledClass } from './compile';
import { InvalidError, SchemaMismatchError, TooLargeError } from './errors';
import { CoordOpEnvelope } from './schemas/coord-op';
import { CoordEvent, PAYLOAD_CLASSES } from './schemas/coord-event';
import { JobEvent, JobLogRecord } from './schemas/job';
import { TelemetryEvent } from './schemas/telemetry';
import { SentinelObservation } from './schemas/observation';
import { DeadLetterEntry } from './schemas/dead-letter';

/** Default limit of one encoded stream entry (`COORDBUS_MAX_ENTRY_BYTES`). */
export const DEFAULT_MAX_ENTRY_BYTES = 64 * 1024;

/**
 * A payload whose class depends on a tag of the same object (a tagged union): when
 * `value[tag]` names one of `classes` and `value[property]` is an object, that object is
 * validated against the class too, its failing paths prefixed with `property`.
 */
export interface SchemaUnion {
  readonly tag: string;
  readonly property: string;
  readonly classes: Readonly<Record<string, new () => object>>;
}

/** A message schema: its wire name, the major version this code writes and reads, and its DTO class. */
export interface Schema<T> {
  readonly name: string;
  readonly major: number;
  readonly cls: new () => T;
  /** Overrides the codec's size limit for this schema (dead letters carry a whole original entry). */
  readonly maxBytes?: number;
  /** A payload typed by a tag (coord events: `payload` by `tx_kind`). */
  readonly union?: SchemaUnion;
}

/** Every schema coordbus puts on a stream. */
export const Schemas = {
  coordOp: { name: 'coord-op', major: 0, cls: CoordOpEnvelope } as Schema<CoordOpEnvelope>,
  coordEvent: {
    name: 'coord-event',
    major: 1,
    cls: CoordEvent,
    union: { tag: 'tx_kind', property: 'payload', classes: PAYLOAD_CLASSES },
  } as Schema<CoordEvent>,
  jobLog: { name: 'job-log', major: 1, cls: JobLogRecord } as Schema<JobLogRecord>,
  jobEvent: { name: 'job-event', major: 1, cls: JobEvent } as Schema<JobEvent>,
  telemetry: { name: 'telemetry', major: 1, cls: TelemetryEvent } as Schema<TelemetryEvent>,
  observation: { name: 'observation', major: 1, cls: SentinelObservation } as Schema<SentinelObservation>,
  deadLetter: {
    name: 'dead-letter',
    major: 1,
    cls: DeadLetterEntry,
    maxBytes: 1024 * 1024,
  } as Schema<DeadLetterEntry>,
} as const;

export type SchemaKey = keyof typeof Schemas;
const BY_NAME = new Map<string, Schema<unknown>>(
  Object.values(Schemas).map((s) => [s.name, s as Schema<unknown>]),
);

/** Looks a schema up by its wire name (the `type` field of an entry). */
export function schemaByName(name: string): Schema<unknown> | undefined {
  return BY_NAME.get(name);
}

/** The three fields of every coordbus stream entry. */
export const ENTRY_FIELDS = { type: 'type', version: 'v', data: 'data' } as const;

/** Stream entry fields as Redis returns them (`[k1, v1, k2, v2]`) or as a record. */
export type EntryFields = readonly string[] | Readonly<Record<string, string>>;

/** A schema's validation, compiled from its DTO classes (see compile.ts): failing paths go to `paths`. */
interface SchemaValidator<T> {
  /** Validates a parsed value. */
  value(value: object, paths: string[]): T;
  /** The same from JSON text, or undefined when the text needs JSON.parse (CompiledClass.fromJson). */
  json(text: string, paths: string[]): T | undefined;
}
const compiled = new WeakMap<Schema<unknown>, SchemaValidator<unknown>>();

/** Owns-only lookup: the tag may be anything (e.g. `constructor`) when the entry is invalid. */
function unionClass(union: SchemaUnion, tag: unknown): (new () => object) | undefined {
  return typeof tag === 'string' && Object.prototype.hasOwnProperty.call(union.classes, tag)
    ? union.classes[tag]
    : undefined;
}

/** Whether a union's payload is checked against its class (a non-object is the DTO's IsObject's to report). */
export function isUnionPayload(payload: unknown): payload is object {
  return typeof payload === 'object' && payload !== null && !Array.isArray(payload);
}

function compileSchema<T>(schema: Schema<T>): SchemaValidator<T> {
  const own = compileClass(schema.cls as new () => T & object);
  const union = schema.union;
  const variants = new Map<new () => object, CompiledClass<object>>();
  for (const cls of Object.values(union?.classes ?? {})) variants.set(cls, compileClass(cls));
  const withUnion = (instance: Record<string, unknown>, paths: string[]): T => {
    // The union runs even when a decorator failed, so every failing path is named at once.
    const cls = union && unionClass(union, instance[union.tag]);
    if (union && cls && isUnionPayload(instance[union.property])) {
      const before = paths.length;
      const payload = variants.get(cls)!(instance[union.property] as object, paths, union.property);
      if (paths.length === before) instance[union.property] = payload;
    }
    return instance as T;
  };
  return {
    value: (value, paths) => withUnion(own(value, paths) as Record<string, unknown>, paths),
    json: (text, paths) => {
      const instance = own.fromJson(text, paths) as Record<string, unknown> | undefined;
      return instance === undefined ? undefined : withUnion(instance, paths);
    },
  };
}

// The last schema looked up: a consumer decodes one schema entry after entry, and the WeakMap
// lookup was ~2 % of a coord-op decode.
let lastSchema: Schema<unknown> | undefined;
let lastValidator: SchemaValidator<unknown> | undefined;

/** The compiled validator of `schema`, compiled on first use (every built-in schema at start-up). */
function validatorOf<T>(schema: Schema<T>): SchemaValidator<T> {
  if (schema === lastSchema) return lastValidator as SchemaValidator<T>;
  let v = compiled.get(schema as Schema<unknown>);
  if (!v) {
    v = compileSchema(schema as Schema<unknown>);
    compiled.set(schema as Schema<unknown>, v);
  }
  lastSchema = schema as Schema<unknown>;
  lastValidator = v;
  return v as SchemaValidator<T>;
}

// A DTO the compiler cannot handle fails here, when the process starts, not on the first message.
for (const schema of Object.values(Schemas)) validatorOf(schema as Schema<unknown>);

/** Turns `[k, v, k, v]` into a record; a record passes through. */
export function fieldsToRecord(fields: EntryFields): Record<string, string> {
  if (!Array.isArray(fields)) return { ...(fields as Record<string, string>) };
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]] = fields[i + 1];
  return out;
}

/** The entry's size in bytes (UTF-8), or 0 when it is certainly within `limit`. */
function entrySize(fields: Partial<Record<string, string>>, limit: number): number {
  // A UTF-16 code unit is at most 3 bytes of UTF-8: short entries need no byte count at all.
  let units = 0;
  for (const k in fields) units += k.length + (fields[k]?.length ?? 0);
  if (units * 3 <= limit) return 0;
  let n = 0;
  for (const k in fields) n += Buffer.byteLength(k) + Buffer.byteLength(fields[k] ?? '');
  return n;
}

export interface CodecOptions {
  /** Largest encoded entry accepted, in bytes (default 64 KiB). */
  maxBytes?: number;
}

/**
 * Filled by {@link EnvelopeCodec.decode} when given: one object a caller reuses for every entry,
 * so the hot path allocates nothing for it.
 */
export interface DecodeInfo {
  /**
   * The entry's `data` text when the DTO holds exactly what that text says (it was read straight
   * from the text, in the shape producers write: no unknown key, no escape): the same JSON value
   * as `JSON.stringify(dto)`, with numbers as the producer wrote them. Undefined otherwise (the
   * text took JSON.parse, so validation may have dropped keys from it).
   */
  text: string | undefined;
}

/**
 * Encodes DTOs to stream-entry fields and decodes + validates them back.
 *
 * An entry is `type <schema> v <major> data <json>`. Decoding refuses a newer major version
 * (`SchemaMismatchError`), an oversize entry (`TooLargeError`) and anything that fails the
 * schema (`InvalidError`, naming every failing path), so a consumer can dead-letter it.
 */
export class EnvelopeCodec {
  readonly maxBytes: number;

  constructor(options: CodecOptions = {}) {
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_ENTRY_BYTES;
    if (!Number.isInteger(this.maxBytes) || this.maxBytes <= 0) {
      throw new RangeError(`maxBytes must be a positive integer (got ${options.maxBytes})`);
    }
  }

  /**
   * The size limit for `schema`: the codec's, or the schema's own when larger. A schema's limit
   * only ever raises it (dead letters wrap a whole original entry, so they must fit whatever the
   * configured limit lets through).
   */
  limitFor(schema: Pick<Schema<unknown>, 'maxBytes'>): number {
    return Math.max(schema.maxBytes ?? 0, this.maxBytes);
  }

  /** Validates a plain object against a schema, returning the DTO instance. */
  validate<T>(schema: Schema<T>, value: unknown): T {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new InvalidError(`${schema.name} must be a JSON object`, ['(root): not an object']);
    }
    const paths: string[] = [];
    const instance = validatorOf(schema).value(value, paths);
    if (paths.length) throw new InvalidError(`invalid ${schema.name}`, paths);
    return instance;
  }

  /**
   * Validates (unless `validate: false`) and encodes to flat stream-entry fields. What goes on the
   * wire is the validated DTO, so properties the schema does not know are dropped here already.
   */
  encode<T>(schema: Schema<T>, value: T, options: { validate?: boolean } = {}): string[] {
    const data = options.validate !== false ? this.validate(schema, value) : value;
    const fields = [
      ENTRY_FIELDS.type,
      schema.name,
      ENTRY_FIELDS.version,
      String(schema.major),
      ENTRY_FIELDS.data,
      JSON.stringify(data),
    ];
    const limit = this.limitFor(schema);
    const size = entrySize(fieldsToRecord(fields), limit);
    if (size > limit) throw new TooLargeError(size, limit);
    return fields;
  }

  /** Decodes and validates stream-entry fields written for `schema`; `info` learns how (see DecodeInfo). */
  decode<T>(schema: Schema<T>, fields: EntryFields, info?: DecodeInfo): T {
    if (info) info.text = undefined;
    const limit = this.limitFor(schema);
    let type: string | undefined;
    let rawVersion: string | undefined;
    let data: string | undefined;
    // The common short entry `[k, v, k, v]` needs neither a record nor a byte count: one pass
    // (the last of a repeated name wins), in place (a helper returning the three allocated them).
    // A UTF-16 code unit is at most 3 bytes of UTF-8, so an entry whose code units (names
    // included, duplicates too) times 3 fit the limit is certainly within it.
    let units = -1;
    if (Array.isArray(fields)) {
      const list = fields as readonly string[];
      const n = list.length;
      units = 0;
      for (let i = 0; i < n; i += 2) {
        const k = list[i];
        if (i + 1 === n) {
          units += k.length; // a dangling name: counted, never a field
          break;
        }
        const v = list[i + 1];
        units += k.length + v.length;
        if (k === ENTRY_FIELDS.data) data = v;
        else if (k === ENTRY_FIELDS.type) type = v;
        else if (k === ENTRY_FIELDS.version) rawVersion = v;
      }
    }
    if (units < 0 || units * 3 > limit) {
      const record = fieldsToRecord(fields);
      const size = entrySize(record, limit);
      if (size > limit) throw new TooLargeError(size, limit);
      type = record[ENTRY_FIELDS.type];
      rawVersion = record[ENTRY_FIELDS.version];
      data = record[ENTRY_FIELDS.data];
    }
    if (type !== undefined && type !== schema.name) {
      throw new InvalidError(`expected a ${schema.name} entry`, [`type: is ${JSON.stringify(type)}`]);
    }
    if (rawVersion !== undefined) {
      // One digit is every version written so far; anything longer takes the full check.
      const digit = rawVersion.length === 1 ? rawVersion.charCodeAt(0) - 48 : -1;
      const version = digit >= 0 && digit <= 9 ? digit : /^\d+$/.test(rawVersion) ? Number(rawVersion) : NaN;
      if (!Number.isSafeInteger(version)) {
        throw new InvalidError(`invalid ${schema.name} entry`, [
          `v: ${JSON.stringify(rawVersion)} is not a version`,
        ]);
      }
      if (version > schema.major) throw new SchemaMismatchError(schema.name, version, schema.major);
    }
    if (data === undefined) throw new InvalidError(`invalid ${schema.name} entry`, ['data: missing']);
    // Straight from the text to the validated instance when the text is in the shape producers
    // write (one pass, no intermediate object); JSON.parse + validate otherwise. Same result.
    const paths: string[] = [];
    const read = validatorOf(schema).json(data, paths);
    if (read === undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(data);
      } catch (err) {
        throw new InvalidError(`invalid ${schema.name} entry`, [
          `data: not JSON (${(err as Error).message})`,
        ]);
      }
      this.checkInnerVersion(schema, parsed);
      return this.validate(schema, parsed);
    }
    // The reader copies `v` as it is in the text, so the instance's is the parsed value's.
    this.checkInnerVersion(schema, read);
    if (paths.length) throw new InvalidError(`invalid ${schema.name}`, paths);
    if (info) info.text = data;
    return read;
  }

  /** The coord op envelope carries its own version too (`v` of seed 000), checked before validation. */
  private checkInnerVersion(schema: Schema<unknown>, parsed: unknown): void {
    if (schema === (Schemas.coordOp as unknown) && typeof (parsed as { v?: unknown })?.v === 'number') {
      const inner = (parsed as { v: number }).v;
      if (inner > schema.major) throw new SchemaMismatchError(schema.name, inner, schema.major);
    }
  }
}
