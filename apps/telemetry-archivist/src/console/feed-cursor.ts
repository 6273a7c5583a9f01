/**
 * The live feed's position: the last entry id delivered from each stream it follows, plus the
 * heartbeat watermark (ms) of the sessions zset. It is the SSE event id, so a browser that
 * reconnects sends it back as `Last-Event-ID` and gets exactly the entries after it.
 *
 * Text form: `ce=1700000000000-0;je=0-0;hb=1700000000000` (keys below; order does not matter).
 */
export const FEED_STREAM_KEYS = [
  'ce', // coord events
  'ci', // coord ingest (only failed ops reach the page: lock conflicts and errors)
  'je', // job events
  'te', // telemetry (only stall/degraded reach the page)
  'ac', // agent activity
  'au', // operator audit
  'dci', // dead letters of each archived source stream
  'dce',
  'dso',
  'dte',
  'dje',
] as const;
export type FeedStreamKey = (typeof FEED_STREAM_KEYS)[number];

export interface FeedCursor {
  ids: Record<FeedStreamKey, string>;
  /** Heartbeats with a score at or above this are still to be delivered. */
  hb: number;
}

const ENTRY_ID = /^\d{1,15}-\d{1,15}$/;
const KEYS = new Set<string>(FEED_STREAM_KEYS);

export function formatCursor(c: FeedCursor): string {
  return [...FEED_STREAM_KEYS.map((k) => `${k}=${c.ids[k]}`), `hb=${c.hb}`].join(';');
}

/**
 * Parses a cursor this service made. Anything malformed is refused (null) rather than guessed:
 * the client then starts from a fresh snapshot instead of silently missing entries.
 */
export function parseCursor(raw: string | undefined | null): FeedCursor | null {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 2000) return null;
  const ids: Partial<Record<FeedStreamKey, string>> = {};
  let hb: number | undefined;
  for (const part of raw.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return null;
    const key = part.slice(0, eq);
    const value = part.slice(eq + 1);
    if (key === 'hb') {
      if (!/^\d{1,15}$/.test(value)) return null;
      hb = Number(value);
    } else if (KEYS.has(key) && ENTRY_ID.test(value)) {
      ids[key as FeedStreamKey] = value;
    } else {
      return null;
    }
  }
  if (hb === undefined || FEED_STREAM_KEYS.some((k) => ids[k] === undefined)) return null;
  return { ids: ids as Record<FeedStreamKey, string>, hb };
}

/** Compares two stream entry ids (`ms-seq`) numerically. */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-');
  const [bm, bs] = b.split('-');
  const dm = Number(am) - Number(bm);
  return dm !== 0 ? Math.sign(dm) : Math.sign(Number(as) - Number(bs));
}
