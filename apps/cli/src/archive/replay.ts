import type Redis from 'ioredis';
import {
  ARCHIVIST_VARS,
  CLI_VARS,
  parseTimePoint,
  readSecret,
  readVar,
  SHARED_VARS,
  TIME_POINT_FORMS,
} from '@coordbus/config';
import { redisClusterFromEnv } from '@coordbus/coord';
import { openRedis } from '@coordbus/redis-streams';
import {
  CoordOpEnvelope,
  EXIT_CODES,
  EnvelopeCodec,
  GROUPS,
  Keyspace,
  Schemas,
  fieldsToRecord,
  keyspaceFromEnv,
} from '@coordbus/envelope';
import { formatEnvelopeLine } from '../tail/format';

/** Options of `coordbus replay --archive` (the flags of `coordbus replay`). */
export interface ArchiveReplayOptions {
  /** RFC 3339 time, or a duration back from now (`15m`, `2h`, `7d`). */
  since?: string;
  until?: string;
  session?: string;
  op?: string;
  /** One envelope per line as JSON instead of the human line format. */
  json?: boolean;
  /** After the archived part, continue live from the coord ingest stream. */
  follow?: boolean;
  /** Only the last `count` archived envelopes (then live, with --follow). */
  count?: number;
  /** Newest first (default: oldest first, like `tail` and `coordbus replay`). Not with `follow`. */
  reverse?: boolean;
}

/** What tests (and embedders) may inject; the CLI uses the environment. */
export interface ArchiveReplayDeps {
  env?: NodeJS.ProcessEnv;
  /** Stops --follow (the CLI stops on Ctrl-C instead). */
  signal?: AbortSignal;
  /** Where errors go (default process.stderr). */
  err?: NodeJS.WritableStream;
}

export const DEFAULT_ARCHIVIST_URL = CLI_VARS.ARCHIVIST_URL.default;
const PAGE = 1000;

/** A failure with the exit code it maps to. */
class ReplayError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** Any time `parseTimePoint` reads (RFC 3339, epoch ms, `15m` = 15 minutes before now), as RFC 3339 UTC. */
export function resolveTime(flag: string, raw: string, nowMs = Date.now()): string {
  const ms = parseTimePoint(raw, nowMs);
  if (ms === undefined) {
    throw new ReplayError(
      `--${flag} must be ${TIME_POINT_FORMS} (got ${JSON.stringify(raw)})`,
      EXIT_CODES.usage,
    );
  }
  return new Date(ms).toISOString();
}

/** The id just below `id`, so an inclusive `until_id` excludes `id` itself. */
export function previousId(id: string): string {
  const [ms, seq] = id.split('-').map((p) => BigInt(p));
  if (seq > 0n) return `${ms}-${seq - 1n}`;
  if (ms === 0n) return '0-0';
  // No stream has 10^15 entries within one millisecond; the API bounds seq to 15 digits.
  return `${ms - 1n}-999999999999999`;
}

interface ArchivedEvent {
  id: string;
  data: unknown;
}

interface EventsPage {
  events: ArchivedEvent[];
  next_cursor: string | null;
}

/**
 * The bearer token for the archive API: the archivist's own read token (`COORDBUS_API_TOKEN` or
 * `_FILE`), else its operator token, which also grants reads. None when neither is set (a loopback
 * archivist needs none).
 */
function archiveToken(env: NodeJS.ProcessEnv): string | undefined {
  for (const v of [ARCHIVIST_VARS.COORDBUS_API_TOKEN, ARCHIVIST_VARS.COORDBUS_OPERATOR_TOKEN]) {
    const read = readSecret(env, v);
    if (!read.ok) throw new ReplayError(read.problem, EXIT_CODES.usage);
    if (read.value !== undefined) return read.value;
  }
  return undefined;
}

async function fetchPage(base: string, params: URLSearchParams, token?: string): Promise<EventsPage> {
  const url = `${base.replace(/\/+$/, '')}/v1/events?${params}`;
  let res: Response;
  try {
    res = await fetch(url, {
      signal: AbortSignal.timeout(30_000),
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
  } catch (err) {
    const c = (err as { cause?: { code?: string; message?: string } }).cause;
    const cause = c?.code ?? c?.message ?? (err as Error).message;
    throw new ReplayError(
      `Unavailable: the archivist at ${base} did not answer (${cause}); is telemetry-archivist running? (ARCHIVIST_URL)`,
      EXIT_CODES.Unavailable,
    );
  }
  const body = (await res.json().catch(() => null)) as (EventsPage & { message?: string | string[] }) | null;
  if (res.status === 401 || res.status === 403) {
    throw new ReplayError(
      token
        ? `the archivist at ${base} refused the token (${res.status}): check COORDBUS_API_TOKEN (or COORDBUS_API_TOKEN_FILE)`
        : `the archivist at ${base} requires a token (${res.status}): set COORDBUS_API_TOKEN (or COORDBUS_API_TOKEN_FILE) to its read token`,
      EXIT_CODES.usage,
    );
  }
  if (res.status === 400) {
    const why = Array.isArray(body?.message) ? body.message.join('; ') : (body?.message ?? 'bad request');
    throw new ReplayError(`the archivist refused the query: ${why}`, EXIT_CODES.usage);
  }
  if (!res.ok || !body || !Array.isArray(body.events)) {
    throw new ReplayError(
      `the archivist answered ${res.status} for ${url}`,
      res.status >= 500 ? EXIT_CODES.Unavailable : EXIT_CODES.Internal,
    );
  }
  return body;
}

/**
 * The id through which the archive is known complete for the coord ingest stream: every entry up
 * to it was committed to the archive before the `archivist` group acked it. With entries pending
 * (read, not yet committed), that is just below the oldest pending one; else the group's
 * last-delivered id. No group yet: nothing is archived, the live part starts at the beginning.
 */
export async function archivedThrough(
  redis: Redis,
  stream: string,
  group: string = GROUPS.archivist,
): Promise<string> {
  let groups: unknown[];
  try {
    groups = (await redis.xinfo('GROUPS', stream)) as unknown[];
  } catch (err) {
    if (/no such key/i.test((err as Error).message)) return '0-0';
    throw err;
  }
  for (const g of groups) {
    const rec = fieldsToRecord((g as unknown[]).map(String));
    if (rec.name !== group) continue;
    if (Number(rec.pending) > 0) {
      const summary = (await redis.xpending(stream, group)) as [
        number,
        string | null,
        string | null,
        unknown,
      ];
      if (summary[1]) return previousId(summary[1]);
    }
    return rec['last-delivered-id'] ?? '0-0';
  }
  return '0-0';
}

/** Enough shape to print a line (cheap; the archive holds validated envelopes by default). */
function looksLikeEnvelope(v: unknown): v is CoordOpEnvelope {
  const e = v as CoordOpEnvelope;
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof e.ts === 'string' &&
    typeof e.level === 'string' &&
    typeof e.msg === 'string' &&
    typeof e.host === 'string' &&
    typeof e.fields === 'object' &&
    e.fields !== null &&
    typeof e.fields.op === 'string' &&
    typeof e.fields.session === 'string' &&
    typeof e.fields.duration_ms === 'number'
  );
}

function matches(
  env: CoordOpEnvelope,
  opts: ArchiveReplayOptions,
  sinceMs?: number,
  untilMs?: number,
): boolean {
  if (opts.session !== undefined && env.fields.session !== opts.session) return false;
  if (opts.op !== undefined && env.fields.op !== opts.op) return false;
  const ts = Date.parse(env.ts);
  if (sinceMs !== undefined && ts < sinceMs) return false;
  if (untilMs !== undefined && ts > untilMs) return false;
  return true;
}

/**
 * `coordbus replay --archive`: prints coord op envelopes from the archivist's HTTP API (all of
 * them, beyond the capped replay stream) in the `coordbus replay` line format or as JSON lines,
 * oldest first like `coordbus replay` (`reverse`: newest first).
 *
 * `--follow` has no gap and no repeat at the seam between archive and live: before reading the
 * archive it takes the archived-through id W of the coord ingest stream (see archivedThrough),
 * prints the archived entries with id <= W, then reads the ingest stream itself after W
 * (XREAD from W, blocking once caught up). Entries above W that are already archived are simply
 * taken from the stream instead; nothing above W can have been trimmed yet, because the ingest
 * stream is only trimmed below what every group, the archivist's included, has acked (the hard
 * safety cap is the one exception: it can only bite when the archivist is far behind).
 */
export async function runArchiveReplay(
  opts: ArchiveReplayOptions,
  out: NodeJS.WritableStream,
  deps: ArchiveReplayDeps = {},
): Promise<number> {
  const env = deps.env ?? process.env;
  const errOut = deps.err ?? process.stderr;
  let redis: Redis | undefined;
  try {
    if (opts.follow && opts.until !== undefined)
      throw new ReplayError('--follow and --until cannot be combined', EXIT_CODES.usage);
    if (opts.follow && opts.reverse)
      throw new ReplayError(
        '--follow and --reverse cannot be combined (live entries arrive oldest first)',
        EXIT_CODES.usage,
      );
    if (opts.count !== undefined && (!Number.isInteger(opts.count) || opts.count < 1)) {
      throw new ReplayError(`--count must be a positive integer (got ${opts.count})`, EXIT_CODES.usage);
    }
    const archivist = readVar(env, CLI_VARS.ARCHIVIST_URL);
    if (!archivist.ok) throw new ReplayError(archivist.problem, EXIT_CODES.usage);
    const base = archivist.value;
    const token = archiveToken(env);
    const since = opts.since === undefined ? undefined : resolveTime('since', opts.since);
    const until = opts.until === undefined ? undefined : resolveTime('until', opts.until);
    const keyspace: Keyspace = keyspaceFromEnv(env);
    let skipped = 0;
    const print = (env: unknown) => {
      // Archives written by older archivists in their raw mode (ARCHIVIST_VALIDATE=false, since
      // removed) may hold something that is not an envelope: skip it rather than print garbage.
      if (!looksLikeEnvelope(env)) {
        skipped++;
        return;
      }
      out.write(`${opts.json ? JSON.stringify(env) : formatEnvelopeLine(env)}\n`);
    };

    let watermark: string | undefined;
    if (opts.follow) {
      const url = readVar(env, SHARED_VARS.REDIS_URL);
      if (!url.ok) throw new ReplayError(url.problem, EXIT_CODES.usage);
      redis = openRedis(url.value, {
        cluster: redisClusterFromEnv(env),
        redisOptions: { lazyConnect: true, maxRetriesPerRequest: 2, enableOfflineQueue: false },
        clusterOptions: { lazyConnect: true, enableOfflineQueue: false },
      });
      try {
        await redis.connect();
      } catch (err) {
        throw new ReplayError(
          `Unavailable: Redis (REDIS_URL) is unreachable for --follow: ${(err as Error).message}`,
          EXIT_CODES.Unavailable,
        );
      }
      watermark = await archivedThrough(redis, keyspace.coordIngest);
    }

    // ---- the archived part ----
    const params = new URLSearchParams({ stream: 'coordIngest' });
    if (since) params.set('since', since);
    if (until) params.set('until', until);
    if (opts.session !== undefined) params.set('session', opts.session);
    if (opts.op !== undefined) params.set('op', opts.op);
    if (watermark !== undefined) params.set('until_id', watermark);
    if (opts.count !== undefined) {
      // The last `count`: read newest first, print oldest first (--reverse: as read).
      params.set('order', 'desc');
      const collected: ArchivedEvent[] = [];
      let cursor: string | null = null;
      do {
        if (cursor) params.set('cursor', cursor);
        params.set('limit', String(Math.min(PAGE, opts.count - collected.length)));
        const page = await fetchPage(base, params, token);
        collected.push(...page.events);
        cursor = page.next_cursor;
      } while (cursor && collected.length < opts.count);
      if (!opts.reverse) collected.reverse();
      for (const e of collected) print(e.data);
    } else {
      // The whole window, page by page in the order it is printed.
      if (opts.reverse) params.set('order', 'desc');
      params.set('limit', String(PAGE));
      let cursor: string | null = null;
      do {
        if (cursor) params.set('cursor', cursor);
        const page = await fetchPage(base, params, token);
        for (const e of page.events) print(e.data);
        cursor = page.next_cursor;
      } while (cursor);
    }
    if (skipped) {
      errOut.write(
        `coordbus: skipped ${skipped} archived entries that are not coord op envelopes (see GET /v1/events)\n`,
      );
    }
    if (!opts.follow || !redis || watermark === undefined) return EXIT_CODES.ok;

    // ---- the live part, from the seam on ----
    const codec = new EnvelopeCodec();
    const sinceMs = since ? Date.parse(since) : undefined;
    const stream = keyspace.coordIngest;
    const emit = (fields: string[]) => {
      try {
        const envl = codec.decode(Schemas.coordOp, fields);
        if (matches(envl, opts, sinceMs)) print(envl);
      } catch {
        // Invalid entries are dead-lettered by the consumers; replay shows envelopes only.
      }
    };
    const reader = redis;
    const onAbort = () => reader.disconnect();
    deps.signal?.addEventListener('abort', onAbort, { once: true });
    let last = watermark;
    try {
      while (!deps.signal?.aborted) {
        const res = (await reader.xread('COUNT', PAGE, 'BLOCK', 1000, 'STREAMS', stream, last)) as Array<
          [string, Array<[string, string[]]>]
        > | null;
        for (const [, entries] of res ?? []) {
          for (const [id, fields] of entries) {
            emit(fields);
            last = id;
          }
        }
      }
    } catch (err) {
      if (deps.signal?.aborted) return EXIT_CODES.ok;
      throw new ReplayError(
        `Unavailable: lost Redis while following: ${(err as Error).message}`,
        EXIT_CODES.Unavailable,
      );
    } finally {
      deps.signal?.removeEventListener('abort', onAbort);
    }
    return EXIT_CODES.ok;
  } catch (err) {
    if (err instanceof ReplayError) {
      errOut.write(`coordbus: ${err.message}\n`);
      return err.exitCode;
    }
    errOut.write(`coordbus: Internal: ${(err as Error).message}\n`);
    return EXIT_CODES.Internal;
  } finally {
    redis?.disconnect();
  }
}
