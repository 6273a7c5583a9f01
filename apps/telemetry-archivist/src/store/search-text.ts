/**
 * The archive's text search, defined once for both stores. The words of a row are cut here (not by
 * SQLite's FTS5 tokenizer nor PostgreSQL's text parser, which disagree on `TOD-42`, `src/auth.ts`
 * or `é`), stored as a space-separated list of lowercase words, and handed to each store in a form
 * it indexes without cutting again: FTS5 with the `ascii` tokenizer (splits on the spaces only,
 * since every ASCII character left in a word is a letter or digit), PostgreSQL as a tsvector
 * literal with our positions. So the same query finds the same rows in both.
 *
 * Only the text that matters is indexed (each insert pays for it): names and free text a person
 * would type, not timestamps, ids of the entry itself or numbers. Session ids are not words here:
 * the session column has its own index and the console searches it exactly.
 */

/** A word: letters, combining marks and digits (anything else separates words). */
const WORD = /[\p{L}\p{M}\p{N}]+/gu;
const NON_ASCII = /[^\p{ASCII}]/u;
/** Longer runs are digests, base64 or hex dumps, not words anyone types. */
export const SEARCH_MAX_WORD = 64;
/** Words kept per row (PostgreSQL positions stop at 16383; a log line does not need more). */
export const SEARCH_MAX_WORDS = 200;
/** Characters of one field looked at. */
const FIELD_MAX = 500;
/** Words of a query looked at. */
const QUERY_MAX_WORDS = 8;

/** The words of a text, lowercased and compatibility-normalised (so `Ｔ` finds `t`, `é` finds `é`). */
export function words(text: string): string[] {
  let t = text.length > FIELD_MAX ? text.slice(0, FIELD_MAX) : text;
  if (NON_ASCII.test(t)) t = t.normalize('NFKC');
  const out = t.toLowerCase().match(WORD) ?? [];
  return out.filter((w) => w.length <= SEARCH_MAX_WORD);
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | null =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : null;

/** The coord CLI's op message says only what the op column says (`coord.lock start`). */
const OP_BOILERPLATE = /^coord\.[\w.-]+ (start|end)$/;

/** The text fields of a payload of schema `type` worth finding it by. */
function fields(type: string | null, payload: unknown, depth = 0): unknown[] {
  const d = obj(payload);
  if (!d) return [];
  switch (type) {
    case 'coord-op': {
      const f = obj(d.fields) ?? {};
      const msg = typeof d.msg === 'string' && !OP_BOILERPLATE.test(d.msg) ? d.msg : null;
      return [f.op, f.resource, f.peer, msg];
    }
    case 'coord-event': {
      const p = obj(d.payload) ?? {};
      return [
        d.tx_kind,
        d.resource,
        p.ticket,
        p.note,
        p.subject,
        p.reason,
        p.task,
        p.role,
        p.order_id,
        p.assignee,
        p.to_session,
        p.from_session,
        p.owner_session,
      ];
    }
    case 'observation':
      return [d.kind, d.summary];
    case 'telemetry': {
      const detail = obj(d.detail) ?? {};
      return [d.source, d.event, d.status, detail.line ?? detail.raw];
    }
    case 'job-event':
      return [
        d.job_id,
        d.name,
        d.hook,
        d.worktree,
        d.status,
        d.reason,
        ...(Array.isArray(d.tags) ? d.tags : []),
      ];
    case 'dead-letter': {
      // What was dead-lettered is found by its own words too (one level: a dead letter of a dead letter is not unwrapped).
      const original = obj(d.fields);
      let inner: unknown[] = [];
      if (original && depth === 0 && typeof original.data === 'string') {
        try {
          inner = fields(
            typeof original.type === 'string' ? original.type : null,
            JSON.parse(original.data),
            1,
          );
        } catch {
          inner = [];
        }
      }
      return [d.error_code, d.reason, ...inner];
    }
    default:
      return [];
  }
}

/**
 * The search text of one archived entry: its words joined by single spaces, or null when it has
 * none. `payload` is the parsed `data` of an entry of schema `type`.
 */
export function searchText(type: string | null, payload: unknown): string | null {
  const out: string[] = [];
  for (const f of fields(type, payload)) {
    if (typeof f !== 'string' || !f) continue;
    for (const w of words(f)) {
      out.push(w);
      if (out.length === SEARCH_MAX_WORDS) return out.join(' ');
    }
  }
  return out.length ? out.join(' ') : null;
}

/** searchText of a stored row (its `data` as text), for rows archived before the index existed. */
export function searchTextOfData(type: string | null, data: string): string | null {
  try {
    return searchText(type, JSON.parse(data));
  } catch {
    return null;
  }
}

/**
 * A search query: each whitespace-separated term of the user's text is a phrase of words (`TOD-42`
 * is `tod` followed by `42`); a row matches when it has every phrase; the last word of the query
 * also matches as a prefix, so results follow as one types. Null when the text has no word.
 */
export function parseSearch(q: string): string[][] | null {
  const phrases = q
    .split(/\s+/)
    .map(words)
    .filter((p) => p.length)
    .slice(0, QUERY_MAX_WORDS);
  return phrases.length ? phrases : null;
}

/** An FTS5 MATCH expression for a parsed query (words are letters and digits only: nothing to escape). */
export function ftsQuery(phrases: string[][]): string {
  return phrases.map((p, i) => `"${p.join(' ')}"${i === phrases.length - 1 ? '*' : ''}`).join(' AND ');
}

/** A PostgreSQL tsquery literal for a parsed query (`<->`: the next position, as in an FTS5 phrase). */
export function tsQuery(phrases: string[][]): string {
  const last = phrases.length - 1;
  return phrases
    .map(
      (p, i) => `(${p.map((w, j) => `'${w}'${i === last && j === p.length - 1 ? ':*' : ''}`).join(' <-> ')})`,
    )
    .join(' & ');
}

/** A PostgreSQL tsvector literal of a search text, word positions from 1 (no parsing by PostgreSQL). */
export function tsVector(text: string | null): string | null {
  if (!text) return null;
  return text
    .split(' ')
    .map((w, i) => `'${w}':${i + 1}`)
    .join(' ');
}
