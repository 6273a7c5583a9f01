import { DurationUnit, formatDuration, parseDuration } from './duration';

/** A checked value, or what was expected instead (worded to follow "must be"). */
export type Checked<T> = { ok: true; value: T } | { ok: false; expected: string };

const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
const bad = <T>(expected: string): Checked<T> => ({ ok: false, expected });

export const TRUE_WORDS = ['1', 'true', 'yes', 'on'];
export const FALSE_WORDS = ['0', 'false', 'no', 'off'];

/** An integer in [min, max]; numbers from a config file are accepted as they are. */
export function checkInt(raw: unknown, min: number, max: number): Checked<number> {
  const n = typeof raw === 'string' && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max)
    return bad(`an integer from ${min} to ${max}`);
  return ok(n);
}

/** A finite number in [min, max] (fractions allowed). */
export function checkNumber(raw: unknown, min: number, max: number): Checked<number> {
  const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < min || n > max)
    return bad(`a number from ${min} to ${max}`);
  return ok(n);
}

/** `1/0`, `true/false`, `yes/no`, `on/off` (any case), or a YAML boolean. */
export function checkBool(raw: unknown): Checked<boolean> {
  if (typeof raw === 'boolean') return ok(raw);
  const s = typeof raw === 'string' ? raw.trim().toLowerCase() : undefined;
  if (s !== undefined && TRUE_WORDS.includes(s)) return ok(true);
  if (s !== undefined && FALSE_WORDS.includes(s)) return ok(false);
  return bad('a boolean (1/0, true/false, yes/no, on/off)');
}

/** A duration (see parseDuration) in [minMs, maxMs]; a bare number is in `bareUnit`. */
export function checkDuration(
  raw: string,
  options: { bareUnit?: DurationUnit; minMs?: number; maxMs?: number },
): Checked<number> {
  const { bareUnit, minMs = 0, maxMs = Number.MAX_SAFE_INTEGER } = options;
  const ms = parseDuration(raw, bareUnit);
  if (ms === undefined || ms < minMs || ms > maxMs) return bad(durationExpected(bareUnit, minMs, maxMs));
  return ok(ms);
}

export function durationExpected(bareUnit: DurationUnit | undefined, minMs: number, maxMs: number): string {
  const bare = bareUnit ? `, or a bare number of ${bareUnit === 'ms' ? 'milliseconds' : 'seconds'}` : '';
  const upper = maxMs >= Number.MAX_SAFE_INTEGER ? '' : ` to ${formatDuration(maxMs)}`;
  return `a duration like 250ms, 5s, 10m, 1h, 7d, 1w${bare}, from ${formatDuration(minMs)}${upper}`;
}

export function checkEnum<T extends string>(raw: string, values: readonly T[]): Checked<T> {
  return (values as readonly string[]).includes(raw) ? ok(raw as T) : bad(`one of ${values.join(', ')}`);
}

export function checkUrl(raw: string, protocols: readonly string[]): Checked<string> {
  try {
    if (protocols.includes(new URL(raw).protocol.replace(/:$/, ''))) return ok(raw);
  } catch {
    // falls through to the message below
  }
  return bad(`a URL with scheme ${protocols.map((p) => `${p}://`).join(' or ')}`);
}

export function checkPattern(raw: string, pattern: RegExp, expected?: string): Checked<string> {
  return pattern.test(raw) ? ok(raw) : bad(expected ?? `a string matching ${pattern}`);
}
