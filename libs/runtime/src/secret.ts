import { createHash, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * A credential read from the environment. It prints as `[redacted]` everywhere (JSON, util.inspect,
 * template strings), so a config object can be logged whole without leaking it, and it is compared
 * in constant time: both sides are hashed first, so neither the length nor a common prefix of a
 * wrong guess changes how long the comparison takes.
 */
export class Secret {
  readonly #digest: Buffer;

  constructor(value: string) {
    this.#digest = createHash('sha256').update(value, 'utf8').digest();
  }

  /** True when `candidate` is exactly this secret; constant time in the candidate. */
  matches(candidate: string | undefined | null): boolean {
    if (typeof candidate !== 'string' || candidate === '') return false;
    return timingSafeEqual(this.#digest, createHash('sha256').update(candidate, 'utf8').digest());
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

/**
 * Whether an HTTP listener bound to `host` is reachable from this machine only. Anything else
 * (`0.0.0.0`, `::`, a LAN address, a name) is treated as reachable from the network.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
