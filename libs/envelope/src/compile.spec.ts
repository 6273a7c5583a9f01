import fc from 'fast-check';
import { IsIn, MinLength, ValidatorConstraint, registerDecorator } from 'class-validator';
import {
  DecodeInfo,
  EnvelopeCodec,
  InvalidError,
  JOB_LOG_KINDS,
  JOB_STATUSES,
  LEVELS,
  PAYLOAD_CLASSES,
  PHASES,
  Schema,
  SchemaKey,
  Schemas,
  TELEMETRY_STATUSES,
  TX_KINDS,
  TxKind,
  ErrorCode,
  SchemaMismatchError,
  validateWithClassValidator,
} from '@coordbus/envelope';

/**
 * The compiled validators against class-validator itself: for every schema, thousands of valid
 * and broken values (wrong types, missing and extra fields, bounds, nested payloads per tx_kind,
 * mismatched tags) must get the same verdict, the same failing paths and messages, and when
 * valid the same instance (class, whitelisted properties, key order).
 */

const codec = new EnvelopeCodec();
type Plain = Record<string, unknown>;

// Values that probe the built-in constraints' edges: empty and surrogate/variation-selector
// strings (MinLength counts those), signed zero, fractions, NaN/Infinity (IsNumber/IsInt),
// arrays/objects where scalars belong, and back. Only what JSON.parse or a DTO-typed caller can
// produce: class-transformer rebuilds exotic objects (a boxed String) where the codec keeps them.
const EDGE = fc.constantFrom<unknown>(
  null,
  '',
  ' ',
  '\uD83D\uDE00',
  'a\uFE0F',
  '\uFE0F',
  '\uD800',
  0,
  -0,
  -1,
  1.5,
  -0.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  Number.MAX_SAFE_INTEGER + 2,
  true,
  false,
  [],
  [null],
  [{}],
  [[{}]],
  {},
  { a: 1 },
  '2026-02-29T00:00:00Z',
  '2024-02-29T23:59:59.5+05:30',
  '2026-04-07t12:34:56Z',
  '2026-04-07T12:34:60Z',
  '0099-12-31T23:59:59Z', // validator.js refuses years below 1000 (a Date parsing quirk)
  '01JABCDEF0TXSD0123456789AB',
  'constructor',
  '__proto__x',
);

const timestamp = fc
  .record({
    date: fc.date({
      min: new Date('1000-01-01T00:00:00Z'),
      max: new Date('9999-12-31T23:59:59Z'),
      noInvalidDate: true,
    }),
    zone: fc.constantFrom('Z', 'z', '+00:00', '-07:30', '+23:59'),
    frac: fc.boolean(),
  })
  .map(({ date, zone, frac }) => {
    const iso = date.toISOString(); // 2026-04-07T12:34:56.789Z
    return `${frac ? iso.slice(0, -1) : iso.slice(0, 19)}${zone}`;
  });
const ulid = fc.stringMatching(/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/);
const str = fc.oneof(fc.string(), fc.string({ unit: 'binary', maxLength: 4 }));
const nonEmpty = fc.oneof(
  fc.string({ minLength: 1 }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 4 }),
);
const nullableStr = fc.option(str, { nil: null });
const json = fc.jsonValue({ maxDepth: 2 });
const nat = fc.nat();
const nonNegative = fc.oneof(fc.nat(), fc.double({ min: 0, max: 1e9, noNaN: true }));

/** Optional properties are present half the time. */
const rec = (
  required: Record<string, fc.Arbitrary<unknown>>,
  optional: Record<string, fc.Arbitrary<unknown>> = {},
) =>
  fc.record(
    { ...required, ...optional },
    { requiredKeys: Object.keys(required) as never[] },
  ) as fc.Arbitrary<Plain>;

const PAYLOADS: Record<TxKind, fc.Arbitrary<Plain>> = {
  'session.register': rec({ role: str, task: str, blob: json }),
  'session.heartbeat': rec({ last_heartbeat: timestamp, phase: nullableStr }),
  'session.dereg': rec({ reason: nonEmpty }),
  'lock.acquire': rec(
    { resource: nonEmpty, owner_session: nonEmpty },
    { expires_at: timestamp, reason: str },
  ),
  'lock.release': rec({ resource: nonEmpty, owner_session: nonEmpty }, { reason: str }),
  'inbox.deliver': rec(
    { to_session: nonEmpty, msg_id: nonEmpty, kind: str },
    { from_session: str, subject: str },
  ),
  'dispatch.issue': rec({ order_id: nonEmpty, assignee: nonEmpty, ticket: nonEmpty }),
  'dispatch.ack': rec({ order_id: nonEmpty, assignee: nonEmpty }, { note: str }),
  'dispatch.done': rec({ order_id: nonEmpty, assignee: nonEmpty }, { note: str }),
  'dispatch.reject': rec({ order_id: nonEmpty, assignee: nonEmpty }, { note: str }),
};

/** A valid value of each schema, plus the enum values worth planting elsewhere when mutating. */
const VALID: Record<SchemaKey, { arb: fc.Arbitrary<Plain>; enums: readonly unknown[] }> = {
  coordOp: {
    arb: rec({
      v: fc.constant(0),
      ts: timestamp,
      service: nonEmpty,
      host: str,
      level: fc.constantFrom(...LEVELS),
      pid: nat,
      target: str,
      msg: str,
      fields: rec({
        op: nonEmpty,
        session: str,
        resource: str,
        peer: str,
        duration_ms: nonNegative,
        phase: fc.constantFrom(...PHASES),
        exit_code: fc.integer(),
      }),
    }),
    enums: [...LEVELS, ...PHASES],
  },
  coordEvent: {
    arb: fc.constantFrom(...TX_KINDS).chain((kind) =>
      rec({
        tx_id: ulid,
        tx_kind: fc.constant(kind),
        ts: timestamp,
        ingress_ts: fc.option(timestamp, { nil: null }),
        source: nonEmpty,
        session_id: nullableStr,
        resource: nullableStr,
        payload: PAYLOADS[kind],
      }),
    ),
    enums: TX_KINDS,
  },
  jobLog: {
    arb: fc.oneof(
      rec({
        seq: fc.integer({ min: 1 }),
        ts: timestamp,
        kind: fc.constantFrom('stdout', 'stderr'),
        line: str,
      }),
      rec(
        {
          seq: fc.integer({ min: 1 }),
          ts: timestamp,
          kind: fc.constant('status'),
          status: fc.constantFrom(...JOB_STATUSES),
        },
        { exit_code: fc.option(fc.integer(), { nil: null }), signal: nullableStr, reason: str },
      ),
    ),
    enums: [...JOB_LOG_KINDS, ...JOB_STATUSES],
  },
  jobEvent: {
    arb: rec(
      {
        job_id: nonEmpty,
        invocation_id: nonEmpty,
        hook: nonEmpty,
        name: str,
        worktree: nullableStr,
        tags: fc.array(str, { maxLength: 3 }),
        status: fc.constantFrom(...JOB_STATUSES),
        exit_code: fc.option(fc.integer(), { nil: null }),
        signal: nullableStr,
        host: str,
        ts: timestamp,
      },
      { reason: str },
    ),
    enums: JOB_STATUSES,
  },
  telemetry: {
    arb: rec({
      source: nonEmpty,
      event: nonEmpty,
      status: fc.constantFrom(...TELEMETRY_STATUSES),
      duration_ms: nonNegative,
      detail: fc.dictionary(fc.string(), json, { maxKeys: 3 }),
      ts: timestamp,
    }),
    enums: TELEMETRY_STATUSES,
  },
  observation: {
    arb: rec({
      ts: timestamp,
      session_id: nullableStr,
      kind: fc.constantFrom(...TX_KINDS),
      resource: nullableStr,
      summary: nonEmpty,
      tx_id: ulid,
      source: nonEmpty,
    }),
    enums: TX_KINDS,
  },
  deadLetter: {
    arb: rec({
      fields: fc.dictionary(fc.string(), fc.string(), { maxKeys: 4 }),
      source_stream: nonEmpty,
      entry_id: nonEmpty,
      reason: nonEmpty,
      error_code: fc.constantFrom(...Object.values(ErrorCode)),
      delivery_count: nat,
      group: str,
      consumer: str,
      ts: timestamp,
    }),
    enums: Object.values(ErrorCode),
  },
};

/** One edit: which key (index into the object's keys, descending into objects and arrays), what to do, with what. */
type Edit = { at: number[]; op: 'delete' | 'set' | 'extra'; value: unknown };

function edit(root: Plain, { at, op, value }: Edit): void {
  let node: Record<string, unknown> = root;
  for (let depth = 0; ; depth++) {
    const keys = Object.keys(node);
    const key = keys.length ? keys[at[depth] % keys.length] : 'x';
    const child = node[key];
    // Descend while there is an index left and somewhere to go (fields, payload, detail, tags...).
    if (depth + 1 < at.length && (Array.isArray(child) || child?.constructor === Object)) {
      node = child as Record<string, unknown>;
      continue;
    }
    // Without prototype-named keys (fast-check generates `toString` and the like on purpose):
    // inside a free-form value they are the one deliberate difference (see withoutPrototypeKeys).
    // Filtered before the copy: structuredClone's objects come from another realm than this
    // test's Object.prototype. A copy, as constantFrom hands out the same object every time, and
    // later edits descend into it.
    const kept = withoutPrototypeKeys(value);
    const fresh = typeof kept === 'object' && kept !== null ? structuredClone(kept) : kept;
    // Arrays lose an element, not get a hole: JSON never has holes, and plainToInstance skips them.
    if (op === 'delete' && Array.isArray(node)) node.splice(Number(key), 1);
    else if (op === 'delete') delete node[key];
    else if (op === 'set') node[key] = fresh;
    else node[`extra_${at[depth] % 7}`] = fresh;
    return;
  }
}

const editsFor = (enums: readonly unknown[]) =>
  fc.array(
    fc.record({
      at: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
      op: fc.constantFrom<Edit['op']>('delete', 'set', 'extra'),
      value: fc.oneof(EDGE, json, fc.constantFrom(...enums), fc.constant(undefined)),
    }),
    { minLength: 1, maxLength: 3 },
  );

type Verdict = { ok: true; json: string; cls: string; nested: string[] } | { ok: false; paths: string[] };

/** Class names of the nested instances (fields, payload): the instance shape, not just its JSON. */
function nestedClasses(v: Plain): string[] {
  return Object.entries(v)
    .filter(([, x]) => typeof x === 'object' && x !== null && !Array.isArray(x))
    .map(([k, x]) => `${k}:${(x as object).constructor?.name}`);
}

function compiledVerdict(schema: Schema<unknown>, value: Plain): Verdict {
  try {
    const out = codec.validate(schema, value) as Plain;
    return { ok: true, json: JSON.stringify(out), cls: out.constructor.name, nested: nestedClasses(out) };
  } catch (err) {
    if (!(err instanceof InvalidError)) throw err;
    return { ok: false, paths: err.paths };
  }
}

function referenceVerdict(schema: Schema<unknown>, value: Plain): Verdict {
  const { value: out, paths } = validateWithClassValidator(schema, value);
  if (paths.length) return { ok: false, paths };
  const v = out as Plain;
  return { ok: true, json: JSON.stringify(v), cls: v.constructor.name, nested: nestedClasses(v) };
}

/** Structured copies, so neither side can see the other's (or the generator's) objects. */
const copy = (v: Plain): Plain => structuredClone(v);

/**
 * The one deliberate difference: inside free-form values (telemetry `detail`, a payload's `blob`,
 * a dead letter's `fields`) plainToInstance silently drops keys named like Object.prototype
 * members (`toString`, `constructor`, `__proto__`...); the compiled codec keeps them (see the
 * last test). Generated values leave such keys out so everything else is compared exactly.
 */
function withoutPrototypeKeys<T>(v: T): T {
  if (Array.isArray(v)) return v.map(withoutPrototypeKeys) as T;
  if (typeof v !== 'object' || v === null) return v;
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null) return v;
  const out: Plain = {};
  for (const [k, x] of Object.entries(v)) if (!(k in Object.prototype)) out[k] = withoutPrototypeKeys(x);
  return out as T;
}

describe('compiled validation agrees with class-validator', () => {
  const RUNS = Number(process.env.COMPILE_SPEC_RUNS ?? 1500);

  describe.each(Object.keys(Schemas) as SchemaKey[])('%s', (key) => {
    const schema = Schemas[key] as Schema<unknown>;
    const { arb, enums } = VALID[key];

    it('accepts every valid value exactly as class-validator does', () => {
      fc.assert(
        fc.property(arb.map(withoutPrototypeKeys), (value) => {
          const ref = referenceVerdict(schema, copy(value));
          expect(ref.ok).toBe(true); // the generator itself must produce valid values
          expect(compiledVerdict(schema, copy(value))).toEqual(ref);
        }),
        { numRuns: RUNS },
      );
    });

    it('gives the same verdict and failing paths on broken values', () => {
      let rejected = 0;
      fc.assert(
        fc.property(arb.map(withoutPrototypeKeys), editsFor(enums), (generated, edits) => {
          const value = copy(generated); // edited in place: keep fast-check's own value intact
          for (const e of edits) edit(value, e);
          const ref = referenceVerdict(schema, copy(value));
          if (!ref.ok) rejected++;
          expect(compiledVerdict(schema, copy(value))).toEqual(ref);
        }),
        { numRuns: RUNS * 2 },
      );
      // Most edits must break something, or the test would only be comparing valid values.
      expect(rejected).toBeGreaterThan(RUNS / 2);
    });
  });

  it('checks a coord event payload against the class of its tx_kind, even with the kind swapped', () => {
    const schema = Schemas.coordEvent as Schema<unknown>;
    fc.assert(
      fc.property(
        VALID.coordEvent.arb.map(withoutPrototypeKeys),
        fc.constantFrom(...TX_KINDS),
        (generated, kind) => {
          const value = { ...generated, tx_kind: kind };
          const ref = referenceVerdict(schema, copy(value));
          expect(compiledVerdict(schema, copy(value))).toEqual(ref);
          if (ref.ok) expect(ref.nested).toContain(`payload:${PAYLOAD_CLASSES[kind].name}`);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('keeps free-form keys named like Object.prototype members, which plainToInstance drops', () => {
    const event = {
      source: 'tailer',
      event: 'stall',
      status: 'stall',
      duration_ms: 1,
      detail: { toString: 'kept', nested: { valueOf: 1 } },
      ts: '2026-04-07T12:34:56.789Z',
    };
    expect(codec.validate(Schemas.telemetry, copy(event)).detail).toEqual(event.detail);
    expect(validateWithClassValidator(Schemas.telemetry, copy(event)).value.detail).toEqual({ nested: {} });
  });
});

// ---------------------------------------------------------------------------------------------
// Decoding from text. `decode` reads the JSON text the common way straight into the instance
// (compile.ts, generateTextReader) and falls back to JSON.parse for anything else; either way it
// must give what JSON.parse + class-validator give for the same text: same verdict, same failing
// paths, same instance (class, nested classes, key order, -0 and all: toStrictEqual is Object.is
// on numbers), same refusal of text that is no JSON or of a newer inner version.

type Outcome =
  | { ok: true; value: Plain; order: string }
  | { ok: false; paths: string[] }
  | { ok: false; mismatch: number };

function entry(schema: Schema<unknown>, text: string): string[] {
  return ['type', schema.name, 'v', String(schema.major), 'data', text];
}

/** Texts decode kept as the DTO's own (DecodeInfo.text), counted so a test can see the case ran. */
const kept = { count: 0 };

function decodedOutcome(schema: Schema<unknown>, text: string): Outcome {
  const info: DecodeInfo = { text: 'left from before' };
  try {
    const value = codec.decode(schema, entry(schema, text), info) as Plain;
    // A text kept for the DTO must be the same JSON as the DTO serialised (an archive stores it).
    if (info.text !== undefined) {
      expect(info.text).toBe(text);
      expect(JSON.stringify(JSON.parse(info.text))).toBe(JSON.stringify(value));
      kept.count++;
    }
    return { ok: true, value, order: JSON.stringify(value) };
  } catch (err) {
    expect(info.text).toBeUndefined();
    if (err instanceof SchemaMismatchError) return { ok: false, mismatch: err.found };
    if (!(err instanceof InvalidError)) throw err;
    return { ok: false, paths: err.paths };
  }
}

/** What decode did before it read text itself: JSON.parse, the inner version, class-validator. */
function referenceOutcome(schema: Schema<unknown>, text: string): Outcome {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { ok: false, paths: [`data: not JSON (${(err as Error).message})`] };
  }
  const inner = (parsed as { v?: unknown } | null)?.v;
  if (schema === Schemas.coordOp && typeof inner === 'number' && inner > schema.major) {
    return { ok: false, mismatch: inner };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { ok: false, paths: ['(root): not an object'] };
  }
  const { value, paths } = validateWithClassValidator(schema, parsed);
  if (paths.length) return { ok: false, paths };
  return { ok: true, value: value as Plain, order: JSON.stringify(value) };
}

function expectSameOutcome(schema: Schema<unknown>, text: string): Outcome {
  const ref = referenceOutcome(schema, text);
  const got = decodedOutcome(schema, text);
  expect(got).toStrictEqual(ref);
  return ref;
}

/** Textual damage: whitespace, escapes, quotes, brackets, digits, control and lone surrogate characters. */
const INSERTS = [
  ' ',
  '\n',
  '\t',
  '\\',
  '\\u0061',
  '\\"',
  '"',
  '\u0000',
  '\u001f',
  ',',
  ':',
  '{',
  '}',
  '[',
  ']',
];
const NUMERIC = ['0', '-', '.', 'e', 'E', '+', '1', '.0', 'e0', '00'];
const textEdit = fc.record({
  at: fc.nat(),
  cut: fc.nat({ max: 3 }),
  insert: fc.oneof(
    fc.constantFrom(...INSERTS, ...NUMERIC, '\ud800', '\u2028', 'null', 'true', '"x"', '{}', '[]'),
    fc.constantFrom('"v":1,', '"v":0,', '"extra":1,', '"fields":{},', '"__proto__":{},'),
    fc.string({ maxLength: 3 }),
  ),
});

/** Whether the text is JSON with a key named like an Object.prototype member below the top level. */
function prototypeKeyBelowTop(text: string): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return false;
  }
  const below = (v: unknown, depth: number): boolean =>
    typeof v === 'object' &&
    v !== null &&
    Object.entries(v).some(([k, x]) => (depth > 0 && k in Object.prototype) || below(x, depth + 1));
  return below(parsed, 0);
}

/** Swaps two adjacent top-level keys of the value (JSON order differs, content does not). */
function reorder(value: Plain, at: number): Plain {
  const keys = Object.keys(value);
  if (keys.length < 2) return value;
  const k = at % (keys.length - 1);
  [keys[k], keys[k + 1]] = [keys[k + 1], keys[k]];
  return Object.fromEntries(keys.map((key) => [key, value[key]]));
}

/** The schemas with a text reader (compile.ts): a tagged union or a free-form object has none. */
const TEXT_READ = new Set<SchemaKey>(['coordOp', 'jobLog', 'observation']);

describe('decode from text agrees with JSON.parse + class-validator', () => {
  const RUNS = Number(process.env.COMPILE_SPEC_RUNS ?? 1500);

  describe.each(Object.keys(Schemas) as SchemaKey[])('%s', (key) => {
    const schema = Schemas[key] as Schema<unknown>;
    const { arb, enums } = VALID[key];

    it('decodes every valid value as class-validator does', () => {
      const before = kept.count;
      fc.assert(
        fc.property(arb.map(withoutPrototypeKeys), (value) => {
          expect(expectSameOutcome(schema, JSON.stringify(value)).ok).toBe(true);
        }),
        { numRuns: RUNS },
      );
      // The schemas read straight from text keep that text for most values producers write.
      if (TEXT_READ.has(key)) expect(kept.count - before).toBeGreaterThan(RUNS / 4);
      else expect(kept.count).toBe(before);
    });

    it('gives the same verdict and failing paths on broken values, in any key order', () => {
      fc.assert(
        fc.property(arb.map(withoutPrototypeKeys), editsFor(enums), fc.nat(), (generated, edits, at) => {
          const value = copy(generated);
          for (const e of edits) edit(value, e);
          expectSameOutcome(schema, JSON.stringify(value));
          expectSameOutcome(schema, JSON.stringify(reorder(value, at)));
        }),
        { numRuns: RUNS },
      );
    });

    it('gives the same outcome on damaged text', () => {
      fc.assert(
        fc.property(
          arb.map(withoutPrototypeKeys),
          fc.array(textEdit, { minLength: 1, maxLength: 2 }),
          (value, edits) => {
            let text = JSON.stringify(value);
            for (const { at, cut, insert } of edits) {
              const i = at % (text.length + 1);
              text = text.slice(0, i) + insert + text.slice(i + cut);
            }
            // The one deliberate difference (see withoutPrototypeKeys) is not this test's subject.
            fc.pre(!prototypeKeyBelowTop(text));
            expectSameOutcome(schema, text);
          },
        ),
        { numRuns: RUNS * 2 },
      );
    });
  });

  it('reads every decimal of up to 17 digits to the same double as JSON.parse', () => {
    const schema = Schemas.coordOp as Schema<unknown>;
    const base = JSON.stringify(VALID_COORD_OP);
    const decimal = fc
      .tuple(fc.boolean(), fc.stringMatching(/^(0|[1-9]\d{0,8})$/), fc.stringMatching(/^\d{0,9}$/))
      .map(([minus, int, frac]) => `${minus ? '-' : ''}${int}${frac ? `.${frac}` : ''}`);
    fc.assert(
      fc.property(fc.oneof(decimal, fc.double().map(String)), (n) => {
        fc.pre(/^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(n));
        expectSameOutcome(schema, base.replace('"duration_ms":3.2', `"duration_ms":${n}`));
        expectSameOutcome(schema, base.replace('"exit_code":0', `"exit_code":${n}`));
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('reads numbers, escapes, whitespace and repeated keys as JSON.parse does', () => {
    const schema = Schemas.coordOp as Schema<unknown>;
    const base = JSON.stringify(VALID_COORD_OP);
    const numbers = [
      '0',
      '-0',
      '3.2',
      '0.1',
      '1.0',
      '1e0',
      '1E+2',
      '2.5e-3',
      '12345678901234567890',
      '1.7976931348623157e309',
      '01',
      '1.',
      '.5',
      '+1',
      '-',
      '0x10',
    ];
    const texts = [
      ...numbers.map((n) => base.replace('"duration_ms":3.2', `"duration_ms":${n}`)),
      ...numbers.map((n) => base.replace('"pid":4242', `"pid":${n}`)),
      ...numbers.map((n) => base.replace('"v":0', `"v":${n}`)),
      base.replace('"op":"lock"', '"op":"l\\u006fck"'),
      base.replace('"op":"lock"', '"op":"lo\\"ck"'),
      base.replace('"op":"lock"', '"op":"lo\tck"'),
      base.replace('"op":"lock"', '"op":"\ud800"'),
      base.replace('"op":"lock"', '"op":""'),
      base.replace('"host":"devbox-1"', '"host":null'),
      base.replace('"host":"devbox-1"', '"host":5'),
      base.replace('"fields":{', '"fields":{"op":"x",'),
      base.replace('{"v":0,', '{"v":0,"v":0,'),
      base.replace('{"v":0,', '{"v":1,"v":0,'),
      base.replace('{"v":0,', '{"v":0,"v":1,'),
      base.replace('{"v":0,', '{"v":0, '),
      base.replace('{"v":0,', '{ "v":0,'),
      base.replace(/,"fields":.*\}$/, ',"fields":null}'),
      base.replace(/,"fields":.*\}$/, ',"fields":[]}'),
      base.replace(/,"fields":.*\}$/, ',"fields":"x"}'),
      base.replace(/,"fields":.*\}$/, '}'),
      base.replace(/^\{"v":0,/, '{'),
      `${base}\n`,
      ` ${base}`,
      `${base}}`,
      base.slice(0, -1),
      '{}',
      '[]',
      '"x"',
      'null',
      '',
    ];
    for (const text of texts) expectSameOutcome(schema, text);
    expect(expectSameOutcome(schema, base).ok).toBe(true);
  });
});

const VALID_COORD_OP = {
  v: 0,
  ts: '2026-04-07T12:34:56.789Z',
  service: 'coord',
  host: 'devbox-1',
  level: 'info',
  pid: 4242,
  target: 'coord::lock',
  msg: 'coord.lock done',
  fields: {
    op: 'lock',
    session: 'worker-1',
    resource: 'repo:src/app.ts',
    peer: '',
    duration_ms: 3.2,
    phase: 'post',
    exit_code: 0,
  },
};

// ---------------------------------------------------------------------------------------------
// The inlined built-ins at their edges: MinLength's prefix check (the first `min` code units below
// U+D800 pass without validator's isLength, a shorter .length fails without it, the rest calls
// it) and IsIn written out as a chain of === (a short list of literals; a Set otherwise). One
// rule per DTO: a value any rule rejects is checked again by class-validator's own functions to
// name its paths, so only a lone rule shows what its inlined check accepts.

const OBJECT = { o: 1 };

function oneRule(decorator: PropertyDecorator): Schema<unknown> {
  class OneRule {
    v!: unknown;
  }
  decorator(OneRule.prototype, 'v');
  return { name: 'one-rule', major: 0, cls: OneRule } as Schema<unknown>;
}

describe('inlined built-ins agree with class-validator at their edges', () => {
  const strings = [
    '',
    'a',
    'ab',
    'abc',
    'abcd',
    'abcde',
    '\uFE0F',
    '\uFE0E\uFE0F',
    'a\uFE0F',
    'ab\uFE0F',
    'a\uFE0Fb',
    'abc\uFE0F',
    'abcd\uFE0F',
    '\uFE0Fabcd',
    '\uD83D\uDE00',
    'a\uD83D\uDE00',
    '\uD83D\uDE00\uD83D\uDE00',
    'abc\uD83D\uDE00',
    '\uD800',
    '\uD800a',
    '\uDC00',
    'x\uDC00',
    '\uDC00\uFE0F',
    '\uD800\uDC00\uFE0F',
    '\uD7FF\uD7FF',
    '\uE000\uE000',
    '\uFFFF',
  ];
  const others = [undefined, null, 0, -0, 1, '1', 'a', true, 'true', Number.NaN, [], ['a'], {}, OBJECT];

  const same = (schema: Schema<unknown>, v: unknown) =>
    expect(compiledVerdict(schema, copy({ v }))).toEqual(referenceVerdict(schema, copy({ v })));

  it.each([0, 1, 2, 3, 4, 5])('MinLength(%i) on strings of every kind', (min) => {
    const schema = oneRule(MinLength(min));
    for (const v of [...strings, ...others]) same(schema, v);
  });

  it('IsIn (literals, empty, long and object lists) on equal, loosely equal and other values', () => {
    const values = [...others, 'v16', 'v17', 'x"\u2028\ud800', 'x"\u2028', { o: 1 }];
    const lists = [
      ['a', 1, -0, null, true, undefined, 'x"\u2028\ud800'],
      [0],
      ['1', 'true'],
      [],
      Array.from({ length: 17 }, (_, i) => `v${i}`),
      ['a', OBJECT],
    ];
    for (const list of lists) {
      const schema = oneRule(IsIn(list));
      for (const v of values) same(schema, v);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// TextShape: the reader matches a `ts` in the text with IsTimestamp's shape and acceptRead calls
// only its `rest` (the day). Timestamps at every edge, in each schema read from text: the same
// outcome as JSON.parse + class-validator, whether the text is of the shape (rest decides) or not
// (JSON.parse and the whole check decide).

describe('timestamps read from text', () => {
  const timestamps = [
    '2024-02-29T00:00:00Z',
    '2023-02-29T00:00:00Z',
    '2000-02-29T12:00:00+01:00',
    '1900-02-29T12:00:00-01:00',
    '2026-04-30T00:00:00z',
    '2026-04-31T00:00:00Z',
    '2026-12-31T23:59:59.999999999+23:59',
    '2026-04-07T24:00:00Z',
    '2026-04-07T23:59:60Z',
    '2026-04-07T12:34:56.Z',
    '2026-04-07T12:34:56+24:00',
    '2026-04-07T12:34:56+0530',
    '2026-04-07t12:34:56Z',
    '2026-04-07T12:34:56',
    '2026-13-07T12:34:56Z',
    '0099-12-31T23:59:59Z',
    '0999-02-29T00:00:00Z',
    '1000-02-29T00:00:00Z',
    '',
  ];
  const bases: [SchemaKey, Plain][] = [
    ['coordOp', VALID_COORD_OP],
    ['jobLog', { seq: 3, ts: VALID_COORD_OP.ts, kind: 'stdout', line: 'x' }],
    [
      'observation',
      {
        ts: VALID_COORD_OP.ts,
        session_id: 'w',
        kind: 'lock.acquire',
        resource: null,
        summary: 's',
        tx_id: '01JABCDEF0TXSD0123456789AB',
        source: 'coord',
      },
    ],
  ];

  it.each(bases)('%s: the same outcome as JSON.parse + class-validator', (key, base) => {
    const schema = Schemas[key] as Schema<unknown>;
    const before = kept.count;
    const ok = timestamps.filter((ts) => expectSameOutcome(schema, JSON.stringify({ ...base, ts })).ok);
    // Leap days and the like of the shape both ways, then text of another shape.
    expect(ok).toEqual([
      '2024-02-29T00:00:00Z',
      '2000-02-29T12:00:00+01:00',
      '2026-04-30T00:00:00z',
      '2026-12-31T23:59:59.999999999+23:59',
    ]);
    expect(kept.count).toBeGreaterThan(before); // some were read from the text
  });

  it('refuses a TextShape pattern with a capturing group when it compiles the DTO', () => {
    @ValidatorConstraint({ name: 'groupedShape', async: false })
    class GroupedShape {
      readonly textShape = { pattern: '(a)', rest: () => true };
      validate(value: unknown) {
        return value === 'a';
      }
    }
    class WithGroupedShape {
      v!: string;
    }
    registerDecorator({
      name: 'groupedShape',
      target: WithGroupedShape,
      propertyName: 'v',
      validator: GroupedShape,
    });
    const schema = { name: 'grouped', major: 0, cls: WithGroupedShape } as Schema<unknown>;
    expect(() => codec.validate(schema, { v: 'a' })).toThrow(/no capturing group/);
  });
});
