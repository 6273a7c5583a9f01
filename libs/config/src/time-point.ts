import { parseDuration } from './duration';

/** What a time parameter accepts, worded to follow "must be" (CLI flags and API parameters alike). */
export const TIME_POINT_FORMS =
  'an RFC 3339 time (2026-06-01T10:00:00Z), epoch milliseconds (1780308000000) or a duration back from now (90s, 15m, 2h, 7d, 1w)';

// Date, optionally a time and an offset. A date alone is midnight UTC; a time without an offset is
// local time (Date.parse's reading, which both the CLI and the API always had).
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?)?$/;
// Epoch milliseconds: 12 to 15 digits (1973 to 33658). Fewer digits are refused rather than read
// as 1970: `since=1700000000` is epoch seconds, almost always.
const EPOCH_MS = /^\d{12,15}$/;

/**
 * The one reading of a point in time as people write it: an RFC 3339 time, epoch milliseconds, or
 * a duration (parseDuration's forms: `15m`, `2h`, `1h30m`) meaning that long before `nowMs`.
 * `coordbus replay --since` and the archive API's `since`/`until` both use it. Returns epoch ms,
 * or undefined when malformed (a calendar date that does not exist, such as 2026-02-30, included).
 */
export function parseTimePoint(raw: string, nowMs = Date.now()): number | undefined {
  const s = raw.trim();
  if (!s) return undefined;
  const back = parseDuration(s);
  if (back !== undefined) return nowMs - back;
  if (EPOCH_MS.test(s)) return Number(s);
  const m = RFC3339.exec(s);
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', sec = '0'] = m;
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (day.getUTCMonth() !== Number(mo) - 1 || day.getUTCDate() !== Number(d)) return undefined;
  if (Number(h) > 23 || Number(mi) > 59 || Number(sec) > 59) return undefined;
  const ms = Date.parse(s.toUpperCase());
  return Number.isFinite(ms) ? ms : undefined;
}
