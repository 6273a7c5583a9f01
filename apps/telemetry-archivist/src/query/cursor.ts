import { EventPosition } from '../store/archive-store';

/** A page cursor: the position of the last row returned, and the order it was read in. */
export interface Cursor extends EventPosition {
  order: 'asc' | 'desc';
}

/** Opaque to clients: base64url of a small JSON document. */
export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([1, c.entryMs, c.entrySeq, c.stream, c.order])).toString('base64url');
}

/** Decodes a cursor from `encodeCursor`; throws a RangeError on anything else. */
export function decodeCursor(raw: string): Cursor {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw new RangeError('cursor is not one this API returned');
  }
  if (
    !Array.isArray(v) ||
    v.length !== 5 ||
    v[0] !== 1 ||
    !Number.isSafeInteger(v[1]) ||
    !Number.isSafeInteger(v[2]) ||
    v[1] < 0 ||
    v[2] < 0 ||
    typeof v[3] !== 'string' ||
    (v[4] !== 'asc' && v[4] !== 'desc')
  ) {
    throw new RangeError('cursor is not one this API returned');
  }
  return { entryMs: v[1], entrySeq: v[2], stream: v[3], order: v[4] };
}
