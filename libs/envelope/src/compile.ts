import { ValidationTypes, getMetadataStorage } from 'class-validator';
import type { ValidationArguments } from 'class-validator';

// Neither is exported from the packages' barrels; both are what validateSync/plainToInstance use,
// so messages and @Type targets come from the very same code and metadata.
const { ValidationUtils } = require('class-validator/cjs/validation/ValidationUtils') as {
  ValidationUtils: {
    replaceMessageSpecialTokens(
      message: string | ((args: ValidationArguments) => string),
      args: ValidationArguments,
    ): string;
  };
};
const { defaultMetadataStorage } = require('class-transformer/cjs/storage') as {
  defaultMetadataStorage: {
    findTypeMetadata(target: object, property: string): { typeFunction(): unknown } | undefined;
  };
};

/**
 * Compiles class-validator DTOs into plain validation functions, once per class.
 *
 * The DTO decorators stay the single source of truth: this reads the same metadata `validateSync`
 * reads and calls the same constraint functions, but resolves everything per-call work there does
 * (metadata lookup and grouping, ValidationError trees, plainToInstance's generic walk) once, up
 * front. It reproduces, for the options the codec uses (`whitelist`, `forbidUnknownValues`,
 * messages from the decorators), what `plainToInstance` + `validateSync` return: the same instance
 * (unknown properties stripped, `@Type` nested values instantiated) and the same failing paths and
 * messages. The property test in compile.spec.ts holds it to that for every schema.
 *
 * Anything the codec's DTOs do not use (groups, async or promise validation, `@ValidateNested`
 * without `@Type`) is refused at compile time, so a new decorator cannot silently validate less.
 */

type Class = new () => object;
interface CvMetadata {
  type: string;
  name?: string;
  target: Class | string;
  propertyName: string;
  constraints: unknown[];
  constraintCls: Class;
  each?: boolean;
  message?: string | ((args: ValidationArguments) => string);
  validateIf?: (object: object, value: unknown) => boolean;
  always?: boolean;
  groups?: string[];
  async?: boolean;
}
interface CvConstraint {
  name?: string;
  async: boolean;
  instance: {
    validate(value: unknown, args: ValidationArguments): boolean | Promise<boolean>;
    defaultMessage?(args: ValidationArguments): string;
    textShape?: TextShape;
  };
}

/**
 * What a constraint class may declare for the text reader: `pattern` (a regular expression's
 * source, no anchors, no capturing group) matches only strings whose JSON text is themselves (no
 * `"`, `\\`, control characters), and for every string it matches whole, `rest(value)` is the
 * constraint's verdict. The reader then matches the property's text with the pattern (text of
 * another shape takes JSON.parse, and the full check) and the check of what it read calls `rest`.
 */
export interface TextShape {
  readonly pattern: string;
  rest(value: string): boolean;
}

interface Rule {
  readonly meta: CvMetadata;
  readonly constraint: CvConstraint;
  /** Resolved once: `ConstraintMetadata.instance` is a getter that asks the DI container each time. */
  readonly instance: CvConstraint['instance'];
  /** Constraint type, the key of ValidationError.constraints (the decorator's name). */
  readonly type: string;
  readonly each: boolean;
  /** Reused on every call: the built-in constraints read `constraints`, ours nothing at all. */
  readonly args: ValidationArguments;
}

interface Property {
  readonly name: string;
  readonly conditions: ((object: object, value: unknown) => boolean)[];
  /** IsDefined rules: they run before the others, and not on a nested array's elements. */
  readonly defined: Rule[];
  /** The custom constraints, in metadata order. */
  readonly rules: Rule[];
  /** `@ValidateNested` metadata (message source); at most one per property in practice. */
  readonly nested: CvMetadata[];
  /** The class `@Type` instantiates nested objects as (required with `@ValidateNested`). */
  nestedPlan?: ClassPlan;
}

interface ClassPlan {
  readonly cls: Class;
  readonly properties: Property[];
  readonly known: Set<string>;
  /** Own properties `new cls()` defines that carry no metadata (the whitelist deletes them). */
  readonly strip: string[];
  /** The generated fast check (see `accepts`), made on first use. */
  accept?: (object: object) => boolean;
  /** The same for an instance the text reader made (TextShape rules call their `rest`). */
  acceptRead?: (object: object) => boolean;
  /** The generated `build`, made on first use. */
  build?: (value: object) => object;
  /** The generated reader of JSON text (see `generateTextReader`), made with `accept`. */
  read?: (text: string) => object | undefined;
}

/** A compiled DTO: builds the instance and appends `path: messages` lines for what fails. */
export interface CompiledClass<T> {
  /** Returns the DTO instance; `errors` receives the failing paths exactly as class-validator's. */
  (value: object, errors: string[], path?: string): T;
  /**
   * The same for JSON text: what `this(JSON.parse(text), errors)` returns, or `undefined` when the
   * text is not in the shape the reader takes (see `generateTextReader`); the caller then parses
   * it with JSON.parse, which also names the error of text that is no JSON at all.
   */
  fromJson(text: string, errors: string[]): T | undefined;
}

const plans = new Map<Class, ClassPlan>();

function isArrayLike(v: unknown): v is unknown[] | Set<unknown> | Map<unknown, unknown> {
  return Array.isArray(v) || v instanceof Set || v instanceof Map;
}

function unsupported(cls: Class, property: string, what: string): never {
  throw new Error(
    `cannot compile ${cls.name}.${property}: ${what} is not supported by the envelope codec's compiled validation`,
  );
}

function planFor(cls: Class): ClassPlan {
  const cached = plans.get(cls);
  if (cached) return cached;
  const storage = getMetadataStorage();
  // The same call ValidationExecutor.execute makes with the codec's options (no groups, always false).
  const metas = storage.getTargetValidationMetadatas(
    cls,
    '',
    false,
    false,
    undefined,
  ) as unknown as CvMetadata[];
  const grouped = storage.groupByPropertyName(metas as never) as unknown as Record<string, CvMetadata[]>;
  const properties: Property[] = [];
  const plan: ClassPlan = { cls, properties, known: new Set(Object.keys(grouped)), strip: [] };
  plans.set(cls, plan); // before nested classes, so a self-referencing DTO terminates
  for (const [name, list] of Object.entries(grouped)) {
    const conditions: Property['conditions'] = [];
    const defined: Rule[] = [];
    const custom: Rule[] = [];
    const nested: CvMetadata[] = [];
    for (const meta of list) {
      if (meta.groups?.length || meta.always) unsupported(cls, name, 'validation groups / always');
      switch (meta.type) {
        case ValidationTypes.CONDITIONAL_VALIDATION:
          conditions.push(meta.constraints[0] as Property['conditions'][number]);
          break;
        case ValidationTypes.NESTED_VALIDATION:
          nested.push(meta);
          break;
        case ValidationTypes.WHITELIST:
          break; // @Allow: whitelisted, nothing to check
        case ValidationTypes.IS_DEFINED:
        case ValidationTypes.CUSTOM_VALIDATION:
          for (const c of storage.getTargetValidatorConstraints(
            meta.constraintCls,
          ) as unknown as CvConstraint[]) {
            if (c.async) unsupported(cls, name, 'an async constraint');
            const rule: Rule = {
              meta,
              constraint: c,
              instance: c.instance,
              type: c.name ? c.name : meta.type,
              each: !!meta.each,
              args: {
                targetName: cls.name,
                property: meta.propertyName,
                object: undefined as unknown as object,
                value: undefined,
                constraints: meta.constraints,
              },
            };
            (meta.type === ValidationTypes.IS_DEFINED ? defined : custom).push(rule);
          }
          break;
        default:
          unsupported(cls, name, `a ${meta.type} rule`);
      }
    }
    const property: Property = { name, conditions, defined, rules: custom, nested };
    if (nested.length) {
      const typeMeta = defaultMetadataStorage.findTypeMetadata(cls, name);
      const target = typeMeta?.typeFunction() as Class | undefined;
      if (!target || target === Object) unsupported(cls, name, '@ValidateNested without a class @Type');
      property.nestedPlan = planFor(target);
    }
    properties.push(property);
  }
  for (const key of Object.keys(new cls())) if (!plan.known.has(key)) plan.strip.push(key);
  return plan;
}

function message(
  meta: CvMetadata,
  constraint: CvConstraint | undefined,
  object: unknown,
  value: unknown,
): string {
  // What ValidationExecutor.createValidationError builds.
  const args: ValidationArguments = {
    targetName: (object as { constructor?: { name: string } })?.constructor?.name as string,
    property: meta.propertyName,
    object: object as object,
    value,
    constraints: meta.constraints,
  };
  let text: string | ((a: ValidationArguments) => string) = meta.message || '';
  if (!meta.message && constraint?.instance.defaultMessage instanceof Function) {
    text = constraint.instance.defaultMessage(args);
  }
  return ValidationUtils.replaceMessageSpecialTokens(text, args);
}

/** plainToInstance for a `@Type` property: objects become instances, arrays map element-wise. */
function instantiate(plan: ClassPlan, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => instantiate(plan, v));
  if (typeof value === 'object' && value !== null) return build(plan, value);
  return value;
}

/** plainToInstance + the whitelist: a new instance with the known own properties only. */
function build(plan: ClassPlan, value: object): object {
  return (plan.build ??= generateBuild(plan))(value);
}

/** Generates `build` for one class: straight-line copies of the known properties. */
function generateBuild(plan: ClassPlan): (value: object) => object {
  const deps: unknown[] = [plan.cls, Object.prototype.hasOwnProperty, instantiate, Object.prototype];
  const lines = plan.strip.map((key) => `delete out[${JSON.stringify(key)}];`);
  // plainToInstance copies own properties only. On a plain object (what JSON.parse makes) a
  // defined value of a name Object.prototype does not have is necessarily its own.
  const inherited = plan.properties.some((p) => p.name in Object.prototype);
  if (!inherited) lines.push('const plain = Object.getPrototypeOf(value) === d[3];');
  for (const p of plan.properties) {
    const key = JSON.stringify(p.name);
    const set = p.nestedPlan ? `d[2](d[${deps.push(p.nestedPlan) - 1}], v)` : 'v';
    const own = inherited ? `d[1].call(value, ${key})` : `(plain || d[1].call(value, ${key}))`;
    lines.push(`if ((v = value[${key}]) !== undefined && ${own}) out[${key}] = ${set};`);
  }
  const body = `const out = new d[0]();\nlet v;\n${lines.join('\n')}\nreturn out;`;
  return compileFunction(`build${plan.cls.name}`, 'value', body, deps) as (value: object) => object;
}

/** Makes `function name(param) { body }` where `body` reaches its dependencies as `d[i]`. */
function compileFunction(name: string, param: string, body: string, deps: unknown[]): unknown {
  // Built from DTO metadata only, never from input.
  const factory = new Function('d', `'use strict';\nreturn function ${name}(${param}) {\n${body}\n};`);
  return factory(deps);
}

function runRule(rule: Rule, object: object, value: unknown): boolean {
  if (rule.meta.validateIf && !rule.meta.validateIf(object, value)) return true;
  const args = rule.args;
  args.object = object;
  args.value = value;
  const validate = rule.instance;
  if (!rule.each || !isArrayLike(value)) return validate.validate(value, args) as boolean;
  const items = value instanceof Map ? Array.from(value.values()) : Array.from(value as Iterable<unknown>);
  for (const item of items) if (!validate.validate(item, args)) return false;
  return true;
}

/** Runs `rules`, adding `type: message` to `failed` (created on the first failure) for each that fails. */
function applyRules(
  rules: Rule[],
  object: object,
  value: unknown,
  failed: Record<string, string> | undefined,
): Record<string, string> | undefined {
  for (const rule of rules) {
    if (!runRule(rule, object, value)) {
      failed ??= {};
      failed[rule.type] = message(rule.meta, rule.constraint, object, value);
    }
  }
  return failed;
}

/**
 * ValidationExecutor.performValidations for one property value: `label` is the property name, or
 * the index when a nested array's elements are validated with the property's own rules.
 */
function validateValue(
  p: Property,
  object: object,
  value: unknown,
  path: string,
  errors: string[],
  element = false,
): void {
  // A nested array's elements get the nested validation only (ValidationExecutor.nestedValidations
  // hands performValidations just the nested metadata for them).
  let failed: Record<string, string> | undefined;
  if (!element) {
    for (const condition of p.conditions) if (!condition(object, value)) return;
    failed = applyRules(p.rules, object, value, applyRules(p.defined, object, value, undefined));
  }
  let children: string[] | undefined;
  if (p.nested.length && value !== undefined) {
    for (const meta of p.nested) {
      if (isArrayLike(value)) {
        const items = value instanceof Set ? Array.from(value) : (value as unknown[] | Map<unknown, unknown>);
        items.forEach((item: unknown, index: unknown) => {
          children ??= [];
          validateValue(p, value as object, item, `${path}.${String(index)}`, children, true);
        });
      } else if (value instanceof Object) {
        children ??= [];
        validateObject(p.nestedPlan!, value, path, children);
      } else {
        failed ??= {};
        failed[meta.type] = message(meta, undefined, meta.target, value);
      }
    }
  }
  if (failed) errors.push(`${path}: ${Object.values(failed).join(', ')}`);
  if (children?.length) for (const line of children) errors.push(line);
}

/** ValidationExecutor.execute on an instance `build` made (already whitelisted). */
function validateObject(plan: ClassPlan, object: object, parent: string, errors: string[]): void {
  if (!(object instanceof plan.cls)) {
    // A nested array's element that is not the @Type class: forbidUnknownValues refuses it.
    errors.push(
      `${parent ? `${parent}.` : ''}undefined: an unknown value was passed to the validate function`,
    );
    return;
  }
  for (const p of plan.properties) {
    const path = parent ? `${parent}.${p.name}` : p.name;
    validateValue(p, object, (object as Record<string, unknown>)[p.name], path, errors);
  }
}

// ---------------------------------------------------------------------------------------------
// The fast path. Almost every message is valid, so the verdict comes from one generated function
// per class: straight-line checks with the common built-in constraints inlined (each inlined
// expression is the built-in's own code, and only when the decorator's validator really is that
// built-in); every other constraint is called as class-validator would call it. Only a rejected
// value goes through validateObject above, which names the failing paths.

/**
 * Built-in constraints inlined as their own code. A decorator is taken for the built-in when both
 * its name and its default message are the built-in's (registerDecorator hides the validator
 * function itself behind a wrapper); anything else is called as class-validator calls it.
 */
const INLINE: Record<string, { message: string; expr: (k: string, c: unknown) => string | undefined }> = {
  isString: { message: 'must be a string', expr: () => `(typeof v === 'string' || v instanceof String)` },
  isInt: {
    message: 'must be an integer number',
    expr: () => `(typeof v === 'number' && Number.isInteger(v))`,
  },
  isArray: { message: 'must be an array', expr: () => `Array.isArray(v)` },
  isObject: {
    message: 'must be an object',
    expr: () => `(v != null && (typeof v === 'object' || typeof v === 'function') && !Array.isArray(v))`,
  },
  equals: { message: 'must be equal to $constraint1', expr: (k) => `(v === ${k})` },
  min: {
    message: 'must not be less than $constraint1',
    expr: (k) => `(typeof v === 'number' && typeof ${k} === 'number' && v >= ${k})`,
  },
  isIn: {
    message: 'must be one of the following values: $constraint1',
    // The built-in is `values.some((x) => x === v)`. A short list of literals is that chain
    // written out: no hash of `v`, which a string fresh from the text has not computed yet
    // (Set.has cost 20-35 ns a call there). Set.has differs from === only for NaN.
    expr: (k, c) => {
      if (!Array.isArray(c) || c.some((x) => Number.isNaN(x))) return undefined;
      const literals = c.length <= 16 ? c.map(literal) : [];
      if (c.length <= 16 && literals.every((l) => l !== undefined)) {
        return c.length ? `(${literals.map((l) => `v === ${l}`).join(' || ')})` : 'false';
      }
      return `${k}.has(v)`;
    },
  },
  isNumber: {
    message: 'must be a number conforming to the specified constraints',
    expr: (_k, c) => {
      const o = (c ?? {}) as { allowNaN?: boolean; allowInfinity?: boolean; maxDecimalPlaces?: number };
      if (o.maxDecimalPlaces !== undefined) return undefined;
      return `(typeof v === 'number' && (v === Infinity || v === -Infinity ? ${!!o.allowInfinity} : Number.isNaN(v) ? ${!!o.allowNaN} : true))`;
    },
  },
  // validator's isLength counts a surrogate pair or a character + variation selector as one, so
  // its length is at most .length, and at least the number of code units that are neither a low
  // surrogate nor a selector (each pair or sequence it counts as one holds a distinct one of
  // those). Hence: shorter than the minimum by .length fails; a string whose first `min` code
  // units are below U+D800 passes without a scan; anything else goes to the built-in itself.
  minLength: {
    message: 'must be longer than or equal to $constraint1 characters',
    expr: (k, c) => {
      if (typeof c !== 'number') return undefined;
      if (!Number.isInteger(c) || c < 1 || c > 4) {
        return `(typeof v === 'string' && (UNCOUNTED.test(v) ? CALL : v.length >= ${k}))`;
      }
      const prefix = Array.from({ length: c }, (_, i) => `v.charCodeAt(${i}) < 0xd800`).join(' && ');
      return `(typeof v === 'string' && v.length >= ${c} && (${prefix} || CALL))`;
    },
  },
};

/** `x` as a JS literal that is `===` to exactly what `x` is, or undefined (objects, NaN). */
function literal(x: unknown): string | undefined {
  if (typeof x === 'string') return JSON.stringify(x);
  if (typeof x === 'number') return Number.isFinite(x) ? (Object.is(x, -0) ? '0' : String(x)) : undefined;
  if (typeof x === 'boolean' || x === null || x === undefined) return String(x);
  return undefined;
}

/**
 * What makes validator's isLength differ from `.length`. One shared object: a regular expression
 * literal in the generated code would be a new RegExp each time it runs (no `g`/`y`, so `test`
 * keeps no state between calls).
 */
// eslint-disable-next-line no-misleading-character-class -- code units on purpose, as validator.js counts them
const UNCOUNTED = /[\uD800-\uDBFF\uFE0E\uFE0F]/;

function isBuiltIn(rule: Rule, message: string): boolean {
  const args = { ...rule.args, value: undefined, object: {} };
  return rule.instance.defaultMessage?.(args) === `$property ${message}`;
}

/**
 * The JS expression for one rule over `o` (object) and `v` (value), registering what it needs in
 * `deps`; `read`: on an instance the text reader made, where a string under a TextShape rule
 * matched its pattern.
 */
function ruleExpr(rule: Rule, deps: unknown[], read = false): string {
  const dep = (x: unknown): string => `d[${deps.push(x) - 1}]`;
  const r = dep(rule.instance);
  const a = dep(rule.args);
  const call = `${r}.validate(v, (${a}.object = o, ${a}.value = v, ${a}))`;
  if (read && rule.instance.textShape && shaped(rule)) {
    // Absent (undefined) when optional: that takes the full check.
    return `(typeof v === 'string' ? ${dep(rule.instance.textShape.rest)}(v) : ${call})`;
  }
  let expr: string | undefined;
  const inline = INLINE[rule.type];
  if (!rule.each && inline && isBuiltIn(rule, inline.message)) {
    const c = rule.meta.constraints?.[0];
    const k = dep(rule.type === 'isIn' && Array.isArray(c) ? new Set(c) : c);
    expr = inline.expr(k, c)?.replace('CALL', call);
    if (expr?.includes('UNCOUNTED')) expr = expr.replace('UNCOUNTED', dep(UNCOUNTED));
  }
  if (!expr) expr = rule.each ? `${dep(runRule)}(${dep(rule)}, o, v)` : call;
  if (rule.meta.validateIf) expr = `(!${dep(rule.meta.validateIf)}(o, v) || ${expr})`;
  return expr;
}

/** Whether the reader matches `rule`'s property with its TextShape (see `shapeOf`). */
function shaped(rule: Rule): boolean {
  return !rule.each && !rule.meta.validateIf;
}

/** The one TextShape among a property's rules, or undefined (none, or more than one). */
function shapeOf(p: Property): TextShape | undefined {
  const shapes = p.rules.filter((r) => r.instance.textShape && shaped(r));
  if (shapes.length !== 1 || p.rules.some((r) => r.instance.textShape && !shaped(r))) return undefined;
  const shape = shapes[0].instance.textShape!;
  // Any capturing group would shift the reader's groups.
  if (new RegExp(`${shape.pattern}|`).exec('')!.length !== 1) {
    throw new Error(`a TextShape pattern must have no capturing group: ${shape.pattern}`);
  }
  return shape;
}

function acceptNested(plan: ClassPlan, value: unknown): boolean {
  if (isArrayLike(value)) {
    for (const item of value instanceof Map ? value.values() : value) {
      if (item !== undefined && !acceptNested(plan, item)) return false;
    }
    return true;
  }
  if (!(value instanceof Object)) return false;
  return value instanceof plan.cls && accepts(plan, value);
}

/**
 * Generates the fast check of one class: true exactly when validateObject would report nothing.
 * `read`: the check of an instance the text reader made (`acceptRead`), nested ones included.
 */
function generate(plan: ClassPlan, read = false): (object: object) => boolean {
  const deps: unknown[] = [];
  const lines: string[] = [];
  for (const p of plan.properties) {
    const checks = [...p.defined, ...p.rules].map(
      (rule) => `  if (!${ruleExpr(rule, deps, read && shapeOf(p) !== undefined)}) return false;`,
    );
    if (p.nestedPlan) {
      const n = deps.push(acceptNested, p.nestedPlan) - 2;
      const cls = p.nestedPlan.cls;
      // An instance of the class (what build makes of an object) goes straight to its check:
      // acceptNested would do the same for it, unless the class were itself a collection.
      const direct = !(
        cls.prototype instanceof Array ||
        cls.prototype instanceof Set ||
        cls.prototype instanceof Map
      );
      const c = deps.push(cls, read ? acceptsRead : accepts) - 2;
      for (let i = 0; i < p.nested.length; i++) {
        checks.push(
          direct
            ? `  if (v !== undefined && !(v instanceof d[${c}] ? d[${c + 1}](d[${n + 1}], v) : d[${n}](d[${n + 1}], v))) return false;`
            : `  if (v !== undefined && !d[${n}](d[${n + 1}], v)) return false;`,
        );
      }
    }
    if (!checks.length) continue;
    lines.push(`v = o[${JSON.stringify(p.name)}];`);
    const conds = p.conditions.map((c) => `d[${deps.push(c) - 1}](o, v)`);
    if (conds.length) lines.push(`if (${conds.join(' && ')}) {`, ...checks, '}');
    else lines.push(...checks.map((l) => l.slice(2)));
  }
  const body = `let v;\n${lines.join('\n')}\nreturn true;`;
  const name = `accept${read ? 'Read' : ''}${plan.cls.name}`;
  return compileFunction(name, 'o', body, deps) as (object: object) => boolean;
}

function accepts(plan: ClassPlan, object: object): boolean {
  return (plan.accept ??= generate(plan))(object);
}

function acceptsRead(plan: ClassPlan, object: object): boolean {
  return (plan.acceptRead ??= generate(plan, true))(object);
}

// ---------------------------------------------------------------------------------------------
// Reading JSON text straight into the instance. JSON.parse is most of a decode, and `build` then
// copies its intermediate object into the DTO. For the shape producers write — what
// JSON.stringify makes of a DTO: no whitespace, the class's properties in declaration order, each
// at most once, strings without escapes — one generated regular expression per class matches the
// whole text (V8 runs it as native code) and its captures become the instance directly. The
// expression takes only text whose JSON.parse + build gives exactly that instance; anything else
// (other key orders, unknown or repeated keys, whitespace, escapes, a value of another JSON type
// than the property's declared TypeScript type, text that is no JSON) does not match, and the
// caller parses it with JSON.parse as before. A property's declared type only picks the pattern
// tried first: it never decides a verdict, validation still does (compile.spec.ts holds both
// ways to the same outcome on valid and broken text).

/** A JSON string without escapes (no `"`, `\`, control characters inside): its content is its value. */
const STRING = '"([^"\\\\\\x00-\\x1f]*)"';
/** The JSON number grammar exactly (no `+`, no leading zeros, digits after `.` and `e`). */
const NUMBER = '-?(?:0|[1-9]\\d*)(?:\\.\\d+)?(?:[eE][+-]?\\d+)?';
/** Any JSON scalar, captured with its quotes (a property typed `string | null` or `unknown`). */
const SCALAR = `("[^"\\\\\\x00-\\x1f]*"|${NUMBER}|true|false|null)`;

/** The class's properties in the order JSON.stringify writes an instance (its own keys' order). */
function wireOrder(plan: ClassPlan): Property[] {
  const byName = new Map(plan.properties.map((p) => [p.name, p]));
  const order: Property[] = [];
  for (const key of Object.keys(new plan.cls())) {
    const p = byName.get(key);
    if (!p) continue;
    order.push(p);
    byName.delete(key);
  }
  return [...order, ...byName.values()];
}

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

/** 10^0 … 10^15, each exact (parsed, not computed). */
const POWERS_OF_TEN = Array.from({ length: 16 }, (_, k) => Number(`1e${k}`));

/**
 * A token of the JSON number grammar as JSON.parse reads it. Up to 15 digits without an exponent
 * (every number a producer writes: pids, exit codes, durations like 3.2), the digits are an exact
 * integer and 10^decimals an exact double, so their quotient is one correctly rounded division:
 * the double nearest the decimal, which is what JSON.parse returns too (Clinger's fast path, taken
 * by every correct string-to-double conversion). V8's general conversion of `+token` costs more
 * than the rest of the property. Anything else goes through it.
 */
function jsonNumber(token: string): number {
  const n = token.length;
  // One character of the grammar is a digit (v, exit codes, most small counts).
  if (n === 1) return token.charCodeAt(0) - 48;
  if (n > 17) return +token;
  let i = 0;
  const negative = token.charCodeAt(0) === 45;
  if (negative) i = 1;
  let digits = 0;
  let count = 0;
  let scale = -1; // digits after the point, -1 before it
  for (; i < n; i++) {
    const c = token.charCodeAt(i);
    if (c === 46) scale = 0;
    else if (c >= 48 && c <= 57) {
      digits = digits * 10 + (c - 48);
      count++;
      if (scale >= 0) scale++;
    } else return +token; // an exponent
  }
  if (count > 15) return +token;
  const value = scale > 0 ? digits / POWERS_OF_TEN[scale] : digits;
  return negative ? -value : value;
}

/** A scalar capture (quotes kept) as JSON.parse reads it. */
function scalarValue(token: string): unknown {
  const c = token.charCodeAt(0);
  if (c === 34) return token.slice(1, -1);
  if (c === 116) return true;
  if (c === 102) return false;
  if (c === 110) return null;
  return jsonNumber(token);
}

/**
 * The JSON type a property's values are expected to have: its declared TypeScript type, or for a
 * literal union (emitted as Object) what its constraints take. Only a hint for which pattern to try.
 */
function declared(p: Property, type: unknown): unknown {
  if (p.conditions.length) return undefined; // @ValidateIf: typically `null` too
  if (type === String || type === Number || type === Boolean) return type;
  for (const rule of p.rules) {
    if (rule.each) continue;
    if (rule.type === 'isString') return String;
    if (rule.type === 'isInt' || rule.type === 'isNumber') return Number;
    const c = rule.meta.constraints?.[0];
    const values = rule.type === 'isIn' && Array.isArray(c) ? c : rule.type === 'equals' ? [c] : [];
    if (values.length && values.every((x) => typeof x === 'string')) return String;
    if (values.length && values.every((x) => typeof x === 'number')) return Number;
  }
  return undefined;
}

interface ReaderShape {
  /** The expression's source for one object of the class (no anchors). */
  pattern: string;
  /** Statements that build the instance into `target` from the match `m`. */
  code: string[];
}

/**
 * The pattern and builder of `plan`'s objects, its groups numbered from `groups.next`; undefined
 * when a property holds objects or arrays the expression cannot describe (free-form payloads,
 * arrays, a class that contains itself): such a class is always read with JSON.parse.
 */
function textShape(
  plan: ClassPlan,
  target: string,
  groups: { next: number },
  deps: unknown[],
  open: Set<ClassPlan>,
): ReaderShape | undefined {
  if (open.has(plan)) return undefined;
  open.add(plan);
  const parts: string[] = [];
  const code = [
    `${target} = new d[${deps.push(plan.cls) - 1}]();`,
    ...plan.strip.map((key) => `delete ${target}[${JSON.stringify(key)}];`),
  ];
  const properties = wireOrder(plan);
  for (const [n, p] of properties.entries()) {
    const set = `${target}[${JSON.stringify(p.name)}]`;
    const type = Reflect.getMetadata('design:type', plan.cls.prototype, p.name) as unknown;
    // A property that only a condition (@ValidateIf, @IsOptional) lets be absent may be absent
    // here; any other is required, as without it the entry is invalid anyway (and JSON.parse
    // names why). Either way only the speed changes, never the outcome.
    const optional = p.conditions.length > 0 && n > 0;
    // A group outside any optional part took part in every match.
    const take = (group: number) =>
      optional ? `if ((v = m[${group}]) !== undefined) ` : `v = m[${group}]; `;
    let value: string;
    if (p.nestedPlan) {
      // An optional object's `()` marks it present; its properties follow with their own groups.
      // A required one is there whenever the expression matched: no group to capture.
      const present = optional ? groups.next++ : 0;
      const child = `o${open.size}`;
      const nested = textShape(p.nestedPlan, child, groups, deps, open);
      if (!nested) return undefined;
      value = `\\{${optional ? '()' : ''}${nested.pattern}\\}`;
      code.push(optional ? `if (m[${present}] !== undefined) {` : '{');
      code.push(`  let ${child};`, ...nested.code.map((l) => `  ${l}`), `  ${set} = ${child};`, '}');
    } else if (
      type === Array ||
      p.rules.some((r) => r.type === 'isObject' || r.type === 'isArray') ||
      p.nested.length
    ) {
      return undefined;
    } else if (shapeOf(p)) {
      // Only text of the constraint's shape: acceptRead then checks it with `rest` alone.
      value = `"(${shapeOf(p)!.pattern})"`;
      code.push(`${take(groups.next++)}${set} = v;`);
    } else if (declared(p, type) === String) {
      value = STRING;
      code.push(`${take(groups.next++)}${set} = v;`);
    } else if (declared(p, type) === Number) {
      value = `(${NUMBER})`;
      const number = deps.push(jsonNumber) - 1;
      // A one-character token is its digit, read here: the call was not inlined (~7 ns a number).
      code.push(`${take(groups.next++)}${set} = v.length === 1 ? v.charCodeAt(0) - 48 : d[${number}](v);`);
    } else if (declared(p, type) === Boolean) {
      value = '(true|false)';
      code.push(`${take(groups.next++)}${set} = v === 'true';`);
    } else {
      value = SCALAR;
      const scalar = deps.push(scalarValue) - 1;
      code.push(`${take(groups.next++)}${set} = d[${scalar}](v);`);
    }
    const key = `${n === 0 ? '' : ','}${escapeRegExp(`${JSON.stringify(p.name)}:`)}${value}`;
    parts.push(optional ? `(?:${key})?` : key);
  }
  open.delete(plan);
  if (!parts.length) return undefined;
  return { pattern: parts.join(''), code };
}

/** `text` → the instance `build(plan, JSON.parse(text))` makes, or undefined (see above). */
type TextReader = (text: string) => object | undefined;

function generateTextReader(plan: ClassPlan): TextReader {
  const deps: unknown[] = [];
  const shape = textShape(plan, 'o0', { next: 1 }, deps, new Set());
  if (!shape) return () => undefined;
  const expression = new RegExp(`^\\{${shape.pattern}\\}$`);
  const exec = deps.push(expression) - 1;
  const body = [
    `const m = d[${exec}].exec(text);`,
    'if (m === null) return undefined;',
    'let o0, v;',
    ...shape.code,
    'return o0;',
  ];
  return compileFunction(`read${plan.cls.name}`, 'text', body.join('\n'), deps) as TextReader;
}

/**
 * Compiles `cls` (and the classes its `@ValidateNested` properties name): the result does what
 * `plainToInstance(cls, value)` then `validateSync(instance, { whitelist: true,
 * forbidUnknownValues: true })` do, flattened to `path: message, message` lines.
 */
export function compileClass<T extends object>(cls: new () => T): CompiledClass<T> {
  const plan = planFor(cls as Class);
  plan.accept ??= generate(plan);
  plan.read ??= generateTextReader(plan);
  plan.acceptRead ??= generate(plan, true);
  const compiled = (value: object, errors: string[], path = ''): T => {
    const instance = build(plan, value);
    if (!plan.accept!(instance)) validateObject(plan, instance, path, errors);
    return instance as T;
  };
  compiled.fromJson = (text: string, errors: string[]): T | undefined => {
    const instance = plan.read!(text);
    if (instance !== undefined && !plan.acceptRead!(instance)) validateObject(plan, instance, '', errors);
    return instance as T | undefined;
  };
  return compiled;
}
