import { createHash } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const MAX_TIME = 2 ** 48 - 1;

/**
 * A ULID whose time part is `timeMs` and whose 80 "random" bits are a hash of `parts`.
 *
 * The fs-poll source has no persistent cursor, so it re-emits what it sees after a restart (and
 * every replica sees the same files). Deriving `tx_id` from the change itself makes those
 * re-emissions carry the same `(source, tx_id)` as the first time, so consumers' dedup drops them.
 */
export function deterministicUlid(
  timeMs: number,
  ...parts: readonly (string | number | null | undefined)[]
): string {
  const time = Math.min(MAX_TIME, Math.max(0, Math.floor(Number.isFinite(timeMs) ? timeMs : 0)));
  let out = '';
  let t = time;
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[t % 32] + out;
    t = Math.floor(t / 32);
  }
  const digest = createHash('sha256')
    .update(parts.map((p) => (p === null || p === undefined ? '\u0001' : String(p))).join('\u0000'))
    .digest();
  // 80 bits = 16 base32 characters, five bits at a time.
  let acc = 0;
  let bits = 0;
  let byte = 0;
  while (out.length < 26) {
    if (bits < 5) {
      acc = (acc << 8) | digest[byte++];
      bits += 8;
    }
    out += CROCKFORD[(acc >> (bits - 5)) & 31];
    bits -= 5;
    acc &= (1 << bits) - 1;
  }
  return out;
}
