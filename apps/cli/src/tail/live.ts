import type Redis from 'ioredis';
import { coordVar, redisClusterFromEnv } from '@coordbus/coord';
import { redactUrl, SHARED_VARS } from '@coordbus/config';
import { openRedis } from '@coordbus/redis-streams';
import { cliRedisTimeoutMs, connectWithin } from '../redis-bound';
import {
  CoordOpEnvelope,
  EnvelopeCodec,
  EXIT_CODES,
  fieldsToRecord,
  InvalidError,
  keyspaceFromEnv,
  LEVELS,
  Level,
  Schemas,
  toCoordbusError,
} from '@coordbus/envelope';
import { formatEnvelopeLine } from './format';

export interface TailOptions {
  level?: string;
  op?: string;
  session?: string;
  json?: boolean;
}

export interface ReplayOptions {
  count?: number;
  json?: boolean;
  op?: string;
  session?: string;
  /** Newest first (default: the selected entries oldest first, like `tail`). */
  reverse?: boolean;
}

export interface LiveDeps {
  env?: NodeJS.ProcessEnv;
  /** Ends `tail` (the CLI ends it on Ctrl-C). */
  signal?: AbortSignal;
  err?: NodeJS.WritableStream;
  /** Called once the subscription is active (tests wait for it). */
  onSubscribed?: () => void;
}

const codec = new EnvelopeCodec();

function matches(env: CoordOpEnvelope, o: { op?: string; session?: string }): boolean {
  return (!o.op || env.fields.op === o.op) && (!o.session || env.fields.session === o.session);
}

export function connect(env: NodeJS.ProcessEnv): Redis {
  // No endless reconnect for a CLI: a Redis that is down is reported (exit 5), not waited for.
  const cluster = redisClusterFromEnv(env);
  const redis = openRedis(coordVar(env, SHARED_VARS.REDIS_URL), {
    cluster,
    redisOptions: {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      connectTimeout: 3000,
      commandTimeout: cliRedisTimeoutMs(env),
      retryStrategy: () => null,
    },
    clusterOptions: { lazyConnect: true, clusterRetryStrategy: () => null },
  });
  // Connection errors surface through the failed command (and are reported once, with exit 5).
  redis.on('error', () => undefined);
  return redis;
}

export function fail(err: NodeJS.WritableStream, e: unknown, what: string): number {
  const ce = toCoordbusError(e);
  const unavailable =
    /ECONNREFUSED|ETIMEDOUT|Connection is closed|connect/i.test(ce.message) && !(e instanceof InvalidError);
  err.write(`coordbus ${what}: ${unavailable ? `redis unavailable: ${ce.message}` : ce.message}\n`);
  return unavailable ? EXIT_CODES.Unavailable : ce.exitCode;
}

/**
 * `coordbus tail`: subscribes to `logs.coord.*` (or one level's channel) and prints one line per
 * envelope as the fanout-publisher publishes it (`--json`: the envelope as one JSON line).
 * Filters by op and session. A malformed message is reported on stderr and skipped.
 * Resolves with the exit code when `signal` aborts.
 */
export async function runTail(
  opts: TailOptions,
  out: NodeJS.WritableStream,
  deps: LiveDeps = {},
): Promise<number> {
  const env = deps.env ?? process.env;
  const err = deps.err ?? process.stderr;
  if (opts.level !== undefined && !(LEVELS as readonly string[]).includes(opts.level)) {
    err.write(
      `coordbus tail: --level must be one of ${LEVELS.join(', ')} (got ${JSON.stringify(opts.level)})\n`,
    );
    return EXIT_CODES.usage;
  }
  const keyspace = keyspaceFromEnv(env);
  const redis = connect(env);
  try {
    await connectWithin(redis, cliRedisTimeoutMs(env), 'REDIS_URL');
    const pattern = opts.level ? keyspace.coordLevelChannel(opts.level as Level) : keyspace.coordLevelPattern;
    redis.on('pmessage', (_p: string, _channel: string, message: string) => {
      let envelope: CoordOpEnvelope;
      try {
        envelope = codec.validate(Schemas.coordOp, JSON.parse(message));
      } catch (e) {
        err.write(`coordbus tail: skipped a malformed message: ${(e as Error).message}\n`);
        return;
      }
      if (!matches(envelope, opts)) return;
      out.write(`${opts.json ? JSON.stringify(envelope) : formatEnvelopeLine(envelope)}\n`);
    });
    const closed = new Promise<number>((resolve) => {
      redis.once('end', () => resolve(EXIT_CODES.Unavailable));
      deps.signal?.addEventListener('abort', () => resolve(EXIT_CODES.ok), { once: true });
    });
    await redis.psubscribe(pattern);
    // On stderr, so stdout stays the envelopes alone (`--json | jq` keeps working).
    const ns = keyspace.namespace ? ` namespace ${keyspace.namespace},` : '';
    err.write(
      `coordbus tail: connected to ${redactUrl(coordVar(env, SHARED_VARS.REDIS_URL))},${ns} following ${pattern} (Ctrl-C stops)\n`,
    );
    deps.onSubscribed?.();
    const code = await closed;
    if (code !== EXIT_CODES.ok) err.write('coordbus tail: redis connection lost\n');
    return code;
  } catch (e) {
    return fail(err, e, 'tail');
  } finally {
    redis.disconnect();
  }
}

/**
 * `coordbus replay`: the last `count` entries (default 20) of the capped replay stream
 * (`logs:stream:coord`) that match the filters, printed oldest first like `tail` (`--reverse`:
 * newest first), as readable lines or (`--json`) one envelope per line.
 */
export async function runReplay(
  opts: ReplayOptions,
  out: NodeJS.WritableStream,
  deps: LiveDeps = {},
): Promise<number> {
  const env = deps.env ?? process.env;
  const err = deps.err ?? process.stderr;
  const count = opts.count ?? 20;
  if (!Number.isInteger(count) || count <= 0) {
    err.write(`coordbus replay: --count must be a positive integer (got ${count})\n`);
    return EXIT_CODES.usage;
  }
  const keyspace = keyspaceFromEnv(env);
  const redis = connect(env);
  try {
    await connectWithin(redis, cliRedisTimeoutMs(env), 'REDIS_URL');
    const filtered = !!(opts.op || opts.session);
    // Newest first as read; the window is only known once `count` entries matched.
    const picked: CoordOpEnvelope[] = [];
    let cursor = '+';
    // Filters may skip entries: page back until `count` matched or the stream is exhausted.
    while (picked.length < count) {
      const page = await redis.xrevrange(
        keyspace.coordReplay,
        cursor,
        '-',
        'COUNT',
        filtered ? 500 : count - picked.length,
      );
      if (!page.length) break;
      for (const [id, fields] of page) {
        let envelope: CoordOpEnvelope;
        try {
          envelope = codec.decode(Schemas.coordOp, fieldsToRecord(fields));
        } catch (e) {
          err.write(`coordbus replay: skipped entry ${id}: ${(e as Error).message}\n`);
          continue;
        }
        if (!matches(envelope, opts)) continue;
        picked.push(envelope);
        if (picked.length >= count) break;
      }
      cursor = `(${page[page.length - 1][0]}`;
    }
    if (!opts.reverse) picked.reverse();
    for (const envelope of picked) {
      out.write(`${opts.json ? JSON.stringify(envelope) : formatEnvelopeLine(envelope)}\n`);
    }
    return EXIT_CODES.ok;
  } catch (e) {
    return fail(err, e, 'replay');
  } finally {
    redis.disconnect();
  }
}
