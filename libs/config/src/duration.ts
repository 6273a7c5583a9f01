const UNIT_MS = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
} as const;
export type DurationUnit = keyof typeof UNIT_MS;

const PART = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/;
const BARE = /^\d+(?:\.\d+)?$/;

/**
 * The one duration parser of coordbus (variables, CLI flags, hooks.yml, retention rules):
 * `500ms`, `30s`, `10m`, `2h`, `7d`, `1w`, compounds like `1h30m`, fractions like `1.5s`.
 * A bare number is read in `bareUnit` — milliseconds for `*_MS` variables, seconds for
 * `COORD_SESSION_TTL` — and refused when `bareUnit` is not given (flags such as `--since 10`
 * must say what they mean). Returns milliseconds, or undefined when malformed.
 */
export function parseDuration(raw: string, bareUnit?: DurationUnit): number | undefined {
  const s = raw.trim();
  if (!s) return undefined;
  if (BARE.test(s)) return bareUnit ? Math.round(Number(s) * UNIT_MS[bareUnit]) : undefined;
  let total = 0;
  let rest = s;
  while (rest) {
    const m = PART.exec(rest);
    if (!m) return undefined;
    total += Number(m[1]) * UNIT_MS[m[2] as DurationUnit];
    rest = rest.slice(m[0].length);
  }
  return Math.round(total);
}

/** `1h2m3s`-style rendering for messages and docs. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const parts: string[] = [];
  let s = Math.round(ms / 1000);
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  return parts.join('');
}
