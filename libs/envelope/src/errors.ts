/**
 * The error-code taxonomy shared by every coordbus app. Each code has one error class (so
 * `instanceof` steers control flow) and one process exit code (so scripts can branch on it).
 */
export enum ErrorCode {
  SchemaMismatch = 'SchemaMismatch',
  Invalid = 'Invalid',
  TooLarge = 'TooLarge',
  NotFound = 'NotFound',
  NoMatch = 'NoMatch',
  Conflict = 'Conflict',
  Unavailable = 'Unavailable',
  KillFailed = 'KillFailed',
  Internal = 'Internal',
}

/** Process exit codes. 0 is success and 2 is a usage error (bad flags or arguments) everywhere. */
export const EXIT_CODES = {
  ok: 0,
  [ErrorCode.Internal]: 1,
  usage: 2,
  [ErrorCode.Conflict]: 3,
  [ErrorCode.NotFound]: 4,
  [ErrorCode.Unavailable]: 5,
  [ErrorCode.NoMatch]: 6,
  [ErrorCode.Invalid]: 7,
  [ErrorCode.SchemaMismatch]: 8,
  [ErrorCode.KillFailed]: 9,
  [ErrorCode.TooLarge]: 10,
} as const;

/** Base class of every typed coordbus error. `retryable` tells a consumer loop whether redelivery can help. */
export abstract class CoordbusError extends Error {
  abstract readonly code: ErrorCode;
  readonly retryable: boolean = false;

  constructor(
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }

  get exitCode(): number {
    return EXIT_CODES[this.code];
  }

  toJSON(): { code: ErrorCode; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** The entry was written by a newer major schema version than this code understands. */
export class SchemaMismatchError extends CoordbusError {
  readonly code = ErrorCode.SchemaMismatch;
  constructor(
    readonly schema: string,
    readonly found: number,
    readonly supported: number,
  ) {
    super(
      `${schema} schema version ${found} is newer than the supported major version ${supported}; upgrade coordbus`,
      { schema, found, supported },
    );
  }
}

/** Fields failed validation; `paths` names every failing field (`fields.phase`, `payload.ticket`). */
export class InvalidError extends CoordbusError {
  readonly code = ErrorCode.Invalid;
  constructor(
    message: string,
    readonly paths: string[] = [],
  ) {
    super(paths.length ? `${message}: ${paths.join('; ')}` : message, { paths });
  }
}

/** The encoded entry exceeds the size limit (`COORDBUS_MAX_ENTRY_BYTES`, default 64 KiB). */
export class TooLargeError extends CoordbusError {
  readonly code = ErrorCode.TooLarge;
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(
      `entry is ${size} bytes, over the ${limit}-byte limit (raise COORDBUS_MAX_ENTRY_BYTES to allow it)`,
      {
        size,
        limit,
      },
    );
  }
}

export class NotFoundError extends CoordbusError {
  readonly code = ErrorCode.NotFound;
}

/** A predicate (cancel filter, query) matched nothing. */
export class NoMatchError extends CoordbusError {
  readonly code = ErrorCode.NoMatch;
}

/** The operation conflicts with current state (a lock held by someone else). */
export class ConflictError extends CoordbusError {
  readonly code = ErrorCode.Conflict;
}

/** A dependency (Redis, the archive) did not answer; trying again later may work. */
export class UnavailableError extends CoordbusError {
  readonly code = ErrorCode.Unavailable;
  override readonly retryable = true;
}

export class KillFailedError extends CoordbusError {
  readonly code = ErrorCode.KillFailed;
}

export class InternalError extends CoordbusError {
  readonly code = ErrorCode.Internal;
}

/** Wraps anything thrown into a CoordbusError so every boundary reports a code. */
export function toCoordbusError(err: unknown): CoordbusError {
  if (err instanceof CoordbusError) return err;
  const message = err instanceof Error ? err.message : String(err);
  // A dependency outage (Redis stopped, a reply timed out) is Unavailable (exit 5), never Internal.
  if (isRetryable(err)) return new UnavailableError(message);
  return new InternalError(message);
}

/** Redis replies that mean "the server cannot take this now", not "this command is wrong". */
const REDIS_OUTAGE = /^(OOM|READONLY|LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY|NOREPLICAS)\b/;
/** Connection-level failures of ioredis, node-postgres and the socket layer. */
const CONNECTION_LOST =
  /Connection is closed|Stream isn't writeable|max retries per request|Command timed out|Connection terminated|timeout exceeded when trying to connect|the database system is (starting up|shutting down|in recovery mode)|terminating connection due to administrator command/i;
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ECONNABORTED',
]);
/** PostgreSQL SQLSTATEs of an unavailable server: connection exceptions (08), operator intervention (57P0x), too many connections. */
const PG_UNAVAILABLE = /^(08\d{3}|57P0[1-4]|53300)$/;

/**
 * Whether a failure is a dependency outage (trying again later can succeed) rather than a fault
 * of the input: a CoordbusError says so itself (`retryable`); anything else is judged by the
 * signatures of Redis (OOM, READONLY, LOADING, ...), a lost or refused connection, a timeout,
 * and PostgreSQL's "server unavailable" states. A consumer loop must not charge such a failure
 * to the entry (no dead letter for an outage).
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof CoordbusError) return err.retryable;
  if (!err || typeof err !== 'object') return false;
  const e = err as { message?: unknown; code?: unknown; name?: unknown };
  const message = typeof e.message === 'string' ? e.message : '';
  const code = typeof e.code === 'string' ? e.code : '';
  return (
    REDIS_OUTAGE.test(message) ||
    CONNECTION_LOST.test(message) ||
    NETWORK_CODES.has(code) ||
    PG_UNAVAILABLE.test(code) ||
    e.name === 'MaxRetriesPerRequestError'
  );
}
