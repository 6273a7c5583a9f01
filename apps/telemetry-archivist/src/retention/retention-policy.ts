import { parseDuration } from '@coordbus/config';
import { RetentionRule } from '../store/archive-store';
import { SOURCE_STREAMS } from '../ingest/row-mapper';

/** Retention rules by stream key (`coordIngest`, `coordIngest:dead`); `*` applies to streams without their own. */
export type RetentionPolicy = Map<string, RetentionRule>;

const STREAM_KEY = `(?:\\*|(?:${SOURCE_STREAMS.join('|')})(?::dead)?)`;
// The age is any coordbus duration (checked by parseDuration below); the pattern only frames it.
const RULE = `\\s*${STREAM_KEY}\\s*=\\s*(?:[0-9][0-9.a-z]*)?\\s*(?:/\\s*\\d+\\s*)?`;

/** Syntax of ARCHIVIST_RETENTION: comma-separated `<stream|*>=[<age>][/<rows>]`, e.g. `*=30d,telemetryEvents=7d/100000`. */
export const RETENTION_PATTERN = new RegExp(`^${RULE}(?:,${RULE})*$`);

/** Parses ARCHIVIST_RETENTION (ages are coordbus durations, a bare number is ms); throws a RangeError naming the problem. */
export function parseRetention(raw: string): RetentionPolicy {
  const policy: RetentionPolicy = new Map();
  if (!raw.trim()) return policy;
  if (!RETENTION_PATTERN.test(raw)) {
    throw new RangeError(
      `expected comma-separated <stream>=<age>[/<rows>] rules, stream one of *, ${SOURCE_STREAMS.join(', ')} (optionally with :dead), age like 30d, rows a count`,
    );
  }
  for (const part of raw.split(',')) {
    const [key, spec] = part.split('=').map((s) => s.trim());
    const [age, rows] = spec.split('/').map((s) => s.trim());
    const rule: RetentionRule = {};
    if (age) {
      const ms = parseDuration(age, 'ms');
      if (ms === undefined)
        throw new RangeError(`rule ${part.trim()}: age ${age} is not a duration like 12h, 30d, 1w`);
      rule.maxAgeMs = ms;
    }
    if (rows) rule.maxRows = Number(rows);
    if (rule.maxAgeMs === undefined && rule.maxRows === undefined) {
      throw new RangeError(`rule ${part.trim()} sets neither an age nor a row count`);
    }
    if (policy.has(key)) throw new RangeError(`stream ${key} has two rules`);
    policy.set(key, rule);
  }
  return policy;
}

/** The rule that applies to one stream key, if any. */
export function ruleFor(policy: RetentionPolicy, key: string): RetentionRule | undefined {
  return policy.get(key) ?? policy.get('*');
}
