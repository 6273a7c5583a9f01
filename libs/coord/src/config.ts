import {
  COORD_INBOX_MAX,
  COORD_MAX_MESSAGE_BYTES,
  COORD_SESSION_TTL,
  COORD_VARS,
  readVar,
  ValueOf,
  Var,
} from '@coordbus/config';
import { InvalidError } from '@coordbus/envelope';

/** Default session TTL: a session whose last heartbeat is older than this is not live. */
export const DEFAULT_SESSION_TTL_S = COORD_SESSION_TTL.default / 1000;

/** A defined variable as the coord CLI reads it: a bad value is an InvalidError naming it. */
export function coordVar<V extends Var>(env: NodeJS.ProcessEnv, v: V): ValueOf<V> {
  const r = readVar(env, v);
  if (!r.ok) throw new InvalidError(r.problem, [r.problem]);
  return r.value;
}

/** Session ids and resource names end up in Redis keys and file names: keep them printable and bounded. */
const SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}$/;

/**
 * The calling session: `COORD_SESSION_ID` > `CLAUDE_SESSION_ID` > `unknown` (the real coord's
 * order). Throws InvalidError for an id that cannot be a key or a file name.
 */
export function resolveSessionId(env: NodeJS.ProcessEnv = process.env): string {
  const { id, from } = sessionIdFrom(env);
  return checkSessionId(id, from);
}

/** The calling session as given (unchecked), and the variable it came from. */
export function sessionIdFrom(env: NodeJS.ProcessEnv): { id: string; from: string } {
  const own = coordVar(env, COORD_VARS.COORD_SESSION_ID);
  if (own !== undefined) return { id: own, from: COORD_VARS.COORD_SESSION_ID.name };
  const claude = coordVar(env, COORD_VARS.CLAUDE_SESSION_ID);
  return { id: claude ?? 'unknown', from: COORD_VARS.CLAUDE_SESSION_ID.name };
}

export function checkSessionId(id: string, what = 'session id'): string {
  if (!SESSION_ID.test(id)) {
    throw new InvalidError(`${what} ${JSON.stringify(id)} is not a valid session id`, [
      `${what}: 1-200 of letters, digits and . _ : @ + -, starting with a letter or digit`,
    ]);
  }
  return id;
}

/** Resource names: 1-256 printable characters, no control characters. */
export function checkResource(resource: string): string {
  // eslint-disable-next-line no-control-regex
  if (!resource || resource.length > 256 || /[\x00-\x1f\x7f]/.test(resource)) {
    throw new InvalidError(`resource ${JSON.stringify(resource)} is not valid`, [
      'resource: 1-256 characters, no control characters',
    ]);
  }
  return resource;
}

/**
 * `COORD_SESSION_TTL` (default 300 s, a bare number is seconds) — read by every piece that judges
 * liveness (coord steal/peers, the sentinel's cull) from one definition, so they agree.
 */
export function sessionTtlMs(env: NodeJS.ProcessEnv = process.env): number {
  return coordVar(env, COORD_SESSION_TTL);
}

/** The inbox bounds a sender enforces (`COORD_MAX_MESSAGE_BYTES`, `COORD_INBOX_MAX`). */
export function inboxLimits(env: NodeJS.ProcessEnv = process.env): {
  maxMessageBytes: number;
  maxInboxDepth: number;
} {
  return {
    maxMessageBytes: coordVar(env, COORD_MAX_MESSAGE_BYTES),
    maxInboxDepth: coordVar(env, COORD_INBOX_MAX),
  };
}

/** How deep a JSON value given on the command line (`register --blob`) may nest. */
export const MAX_JSON_DEPTH = 64;

/**
 * JSON.parse with the nesting depth checked first, in one linear pass that never recurses: a
 * deeply nested value is refused as invalid input instead of overflowing the stack later (in
 * JSON.stringify, in Lua cjson, in a reader).
 */
export function parseBoundedJson(text: string, what: string, maxDepth = MAX_JSON_DEPTH): unknown {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) {
        throw new InvalidError(`${what} nests deeper than ${maxDepth} levels`, [
          `${what}: at most ${maxDepth} levels deep`,
        ]);
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidError(`${what} is not JSON: ${(err as Error).message}`, [`${what}: JSON`]);
  }
}
