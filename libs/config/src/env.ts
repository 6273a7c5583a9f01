import type { DurationUnit } from './duration';
import { checkBool, checkDuration, Checked, checkEnum, checkInt, checkPattern, checkUrl } from './values';
import type { ValueOf, Var } from './variables';

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

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  /** A defined variable (see variables.ts); `fallback` replaces a default computed at run time. */
  get<V extends Var>(v: V, fallback?: ValueOf<V>): ValueOf<V> {
    const r = readVar(this.env, v, fallback);
    if (r.ok) return r.value;
    this.problems.push(r.problem);
    return r.fallback;
  }

  /** Records a problem found by a check outside this reader (cross-variable rules, parsed syntaxes). */
  problem(text: string): void {
    this.problems.push(text);
  }

  private check<T>(name: string, fallback: T, c: (raw: string) => Checked<T>): T {
    const raw = rawOf(this.env, name);
    if (raw === undefined) return fallback;
    const r = c(raw);
    if (r.ok) return r.value;
    this.problems.push(problemText(name, r.expected, raw));
    return fallback;
  }

  string(name: string, fallback: string, options: { pattern?: RegExp; expected?: string } = {}): string {
    return this.check(name, fallback, (raw) =>
      options.pattern ? checkPattern(raw, options.pattern, options.expected) : { ok: true, value: raw },
    );
  }

  optionalString(name: string): string | undefined {
    return rawOf(this.env, name);
  }

  int(name: string, fallback: number, options: { min?: number; max?: number } = {}): number {
    const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = options;
    return this.check(name, fallback, (raw) => checkInt(raw, min, max));
  }

  bool(name: string, fallback: boolean): boolean {
    return this.check(name, fallback, checkBool);
  }

  /** A duration in milliseconds (see parseDuration); a bare number is milliseconds unless `bareUnit` says. */
  durationMs(
    name: string,
    fallbackMs: number,
    options: { minMs?: number; maxMs?: number; bareUnit?: DurationUnit } = {},
  ): number {
    return this.check(name, fallbackMs, (raw) => checkDuration(raw, { bareUnit: 'ms', ...options }));
  }

  enum<T extends string>(name: string, values: readonly T[], fallback: T): T {
    return this.check(name, fallback, (raw) => checkEnum(raw, values));
  }

  url(name: string, fallback: string, protocols: string[]): string {
    return this.check(name, fallback, (raw) => checkUrl(raw, protocols));
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
