import {
  checkBool,
  checkDuration,
  Checked,
  checkEnum,
  checkInt,
  checkNumber,
  checkPattern,
  checkUrl,
} from './values';
import { readFileSync } from 'node:fs';
import type { SecretVar, ValueOf, Var } from './variables';

/** Thrown by `EnvReader.finish()`; its message lists every bad variable and what it expects (exit 2). */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** `NAME must be <expected> (got "<raw>")`: the wording of every configuration problem. */
export function problemText(name: string, expected: string, raw: unknown): string {
  return `${name} must be ${expected} (got ${JSON.stringify(raw)})`;
}

function rawOf(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

/**
 * A defined credential (variables.ts) from `NAME` or from the file named by `NAME_FILE` (a mounted
 * secret; one trailing newline is ignored): what a service checks incoming tokens against and what
 * a client sends. Both set, an unreadable file or a value shorter than `minLength` is a problem;
 * the value itself never appears in a problem message.
 */
export function readSecret(
  env: NodeJS.ProcessEnv,
  v: SecretVar,
): { ok: true; value: string | undefined } | { ok: false; problem: string } {
  const { name, minLength } = v;
  const direct = rawOf(env, name);
  const file = rawOf(env, `${name}_FILE`);
  if (direct !== undefined && file !== undefined)
    return { ok: false, problem: `${name} and ${name}_FILE are both set: give one` };
  let value = direct;
  if (file !== undefined) {
    try {
      value = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      return { ok: false, problem: `${name}_FILE names a file that cannot be read (${code}: ${file})` };
    }
  }
  if (value === undefined) return { ok: true, value: undefined };
  if (value.length < minLength || /\s/.test(value)) {
    return {
      ok: false,
      problem: `${name}${file !== undefined ? '_FILE' : ''} must hold at least ${minLength} characters without spaces (got ${value.length} characters; value not shown)`,
    };
  }
  return { ok: true, value };
}

/**
 * Checks one defined variable. Unset or empty gives the default (or `fallback`, for defaults
 * computed at run time); a bad value gives the problem text naming the variable.
 */
export function readVar<V extends Var>(
  env: NodeJS.ProcessEnv,
  v: V,
  fallback?: ValueOf<V>,
): { ok: true; value: ValueOf<V> } | { ok: false; problem: string; fallback: ValueOf<V> } {
  const def = (fallback !== undefined ? fallback : 'default' in v ? v.default : undefined) as ValueOf<V>;
  const raw = rawOf(env, v.name);
  if (raw === undefined) return { ok: true, value: def };
  let checked: Checked<unknown>;
  switch (v.kind) {
    case 'int':
      checked = checkInt(raw, v.min, v.max);
      break;
    case 'number':
      checked = checkNumber(raw, v.min, v.max);
      break;
    case 'duration':
      checked = checkDuration(raw, v);
      if (!checked.ok && v.expected) checked = { ok: false, expected: v.expected };
      break;
    case 'bool':
      checked = checkBool(raw);
      break;
    case 'enum':
      checked = checkEnum(raw, v.values);
      break;
    case 'url':
      checked = checkUrl(raw, v.protocols);
      break;
    case 'optional':
      checked = v.protocols ? checkUrl(raw, v.protocols) : { ok: true, value: raw };
      break;
    case 'secret':
      // The value as given; EnvReader.secret (libs/runtime) checks it, reads `_FILE` and hides it.
      checked = { ok: true, value: raw };
      break;
    case 'string':
      checked = v.pattern ? checkPattern(raw, v.pattern, v.expected) : { ok: true, value: raw };
      break;
  }
  if (checked.ok) return { ok: true, value: checked.value as ValueOf<V> };
  return { ok: false, problem: problemText(v.name, checked.expected, raw), fallback: def };
}

/**
 * Typed reads of environment variables. Each read records a problem instead of throwing, so
 * `finish()` reports every bad variable at once, each named with what it expects.
 */
export class EnvReader {
  private readonly problems: string[] = [];

  constructor(protected readonly env: NodeJS.ProcessEnv = process.env) {}

  /** A defined variable (see variables.ts); `fallback` replaces a default computed at run time. */
  get<V extends Var>(v: V, fallback?: ValueOf<V>): ValueOf<V> {
    const r = readVar(this.env, v, fallback);
    if (r.ok) return r.value;
    this.problems.push(r.problem);
    return r.fallback;
  }

  /** Whether a defined variable is set (non-empty), for behaviour that differs from its default. */
  isSet(v: Var): boolean {
    return rawOf(this.env, v.name) !== undefined;
  }

  /** Records a problem found by a check outside this reader (cross-variable rules, parsed syntaxes). */
  problem(text: string): void {
    this.problems.push(text);
  }

  /** A variable read as is (credentials and other values with their own checks). */
  optionalString(name: string): string | undefined {
    return rawOf(this.env, name);
  }

  /** Problems so far (for callers that merge them with their own). */
  get problemList(): readonly string[] {
    return this.problems;
  }

  /** Throws a ConfigError listing every problem seen so far. */
  finish(): void {
    if (this.problems.length) throw new ConfigError([...this.problems]);
  }
}
