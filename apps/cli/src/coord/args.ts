import { parseDuration } from '@coordbus/config';

/**
 * A small argv parser for the `coord` hot path (commander costs more to load than the whole
 * `coord heartbeat` budget). Supports `--flag`, `--key value`, `--key=value` and `--` to end
 * options; unknown flags and missing values are usage errors.
 */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface FlagSpec {
  /** Boolean flags take no value. */
  bool?: string[];
  /** Flags that take a value. */
  value?: string[];
}

export interface ParsedArgs {
  positional: string[];
  flags: Record<string, string | boolean>;
}

export function parseArgs(argv: string[], spec: FlagSpec): ParsedArgs {
  const bool = new Set(spec.bool ?? []);
  const value = new Set(spec.value ?? []);
  const out: ParsedArgs = { positional: [], flags: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      out.positional.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      if (bool.has(name)) {
        if (eq > 0) throw new UsageError(`--${name} takes no value`);
        out.flags[name] = true;
      } else if (value.has(name)) {
        const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
        if (v === undefined) throw new UsageError(`--${name} needs a value`);
        out.flags[name] = v;
      } else {
        throw new UsageError(`unknown option --${name}`);
      }
    } else if (a.startsWith('-') && a.length > 1 && a !== '-') {
      if (a === '-h') {
        out.flags.help = true;
        continue;
      }
      throw new UsageError(`unknown option ${a}`);
    } else {
      out.positional.push(a);
    }
  }
  return out;
}

/**
 * Parses a duration flag (`--ttl`, `--timeout`) into ms with the one duration parser: `90s`,
 * `5m`, `1h30m`, or a bare number of seconds.
 */
export function seconds(
  flag: string,
  raw: string | boolean | undefined,
  allowZero = false,
): number | undefined {
  if (raw === undefined || raw === false) return undefined;
  const ms = typeof raw === 'string' ? parseDuration(raw, 's') : undefined;
  if (ms === undefined || (!allowZero && ms === 0)) {
    throw new UsageError(
      `--${flag} must be a ${allowZero ? 'non-negative' : 'positive'} duration like 90s, 5m or a number of seconds (got ${JSON.stringify(raw)})`,
    );
  }
  return ms;
}
