import { hostname } from 'node:os';
import { COORD_VARS, readVar, SHARED_VARS, type Var, type ValueOf } from '@coordbus/config';
import { EXIT_CODES, type CoordOpEnvelope, type Keyspace, type Level } from '@coordbus/envelope';
import { CoordConnection, openCoordConnection } from './cluster-client';

/** Default bound on each fan-out Redis call (`LOGS_COORD_REDIS_TIMEOUT`). */
export const DEFAULT_FANOUT_TIMEOUT_MS = COORD_VARS.LOGS_COORD_REDIS_TIMEOUT.default;
/** Approximate hard cap of the ingest stream, applied by producers (consumers trim ack-aware below it). */
export const DEFAULT_INGEST_MAXLEN = COORD_VARS.COORD_INGEST_MAXLEN.default;

/** Ops whose first argument is a resource (seed 000: `resource` is set for lock/unlock/steal). */
const RESOURCE_OPS = new Set(['lock', 'unlock', 'steal']);
/** Ops whose first argument is another session. */
const PEER_OPS = new Set(['send', 'dispatch']);

export interface OpContext {
  op: string;
  session: string;
  resource?: string;
  peer?: string;
}

/** Picks `resource`/`peer` out of a coord argv the way seed 000 does: op = first positional. */
export function opContext(argv: string[], session: string): OpContext | undefined {
  const positional = argv.filter((a) => !a.startsWith('-'));
  const op = positional[0];
  if (!op) return undefined;
  const first = positional[1] ?? '';
  return {
    op,
    session,
    resource: RESOURCE_OPS.has(op) ? first : '',
    peer: PEER_OPS.has(op) ? first : '',
  };
}

/**
 * The level of a `post` envelope. A conflict (exit 3: another session holds the lock, the order
 * is past that step, the inbox is full) is coordination working as meant, so it is `warn` like
 * the other expected refusals (culls, forced releases); every other non-zero exit — an outage,
 * a crash, bad input — stays `error`, where `psubscribe 'logs.coord.error'` pages someone.
 */
export function postLevel(exitCode: number): Level {
  if (exitCode === 0) return 'info';
  return exitCode === EXIT_CODES.Conflict ? 'warn' : 'error';
}

/**
 * Builds a coord op envelope (seed 000's shape, exactly). `post` carries duration and exit code
 * and its level from `postLevel` (seed 000 raises every non-zero exit to `error`; a conflict is
 * `warn` here).
 */
export function buildEnvelope(
  ctx: OpContext,
  phase: 'pre' | 'post',
  result: { durationMs?: number; exitCode?: number } = {},
  now: Date = new Date(),
): CoordOpEnvelope {
  const exit = phase === 'post' ? (result.exitCode ?? 0) : 0;
  const level = postLevel(exit);
  return {
    v: 0,
    ts: now.toISOString(),
    service: 'coord',
    host: hostname(),
    level,
    pid: process.pid,
    target: `coord::${ctx.op}`,
    msg: `coord.${ctx.op} ${phase === 'pre' ? 'start' : 'end'}`,
    fields: {
      op: ctx.op,
      session: ctx.session,
      resource: ctx.resource ?? '',
      peer: ctx.peer ?? '',
      duration_ms: phase === 'post' ? Math.max(0, Math.round((result.durationMs ?? 0) * 1000) / 1000) : 0,
      phase,
      exit_code: exit,
    },
  } as CoordOpEnvelope;
}

/** The stream-entry fields of an envelope: EnvelopeCodec's `type coord-op v 0 data <json>`. */
export function envelopeFields(env: CoordOpEnvelope): string[] {
  return ['type', 'coord-op', 'v', '0', 'data', JSON.stringify(env)];
}

export interface FanoutOptions {
  redisUrl: string;
  keyspace: Keyspace;
  /** Bound on every Redis call, ms (default 250). */
  timeoutMs?: number;
  /** Publishes nothing (`LOGS_COORD_DISABLED=1`). */
  disabled?: boolean;
  ingestMaxLen?: number;
  /**
   * Share the caller's connection instead of opening one (saves a connect on the hot path).
   * Envelope commands then carry no reply timer of their own — a timed-out reply would close the
   * shared socket under the caller — and `flush` bounds the wait instead, leaving it open.
   */
  client?: CoordConnection;
  /** Redis Cluster mode (`REDIS_CLUSTER`) for the connection it opens itself. */
  cluster?: boolean;
}

/**
 * Fire-and-forget publisher of coord op envelopes to the ingest stream, for hot-path producers
 * (`coord`, `coord-with-fanout`). Each XADD is bounded by `timeoutMs` (connect included) and
 * never throws: Redis slow or down costs at most the bound, and never the caller's exit code.
 * Uses its own connection, so a timed-out envelope cannot disturb the caller's Redis work.
 */
export class FanoutPublisher {
  private client?: CoordConnection;
  private readonly pending: Promise<void>[] = [];
  private readonly timeoutMs: number;
  private failed = false;

  constructor(private readonly options: FanoutOptions) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_FANOUT_TIMEOUT_MS;
  }

  /** Reads `LOGS_COORD_DISABLED`, `LOGS_COORD_REDIS_TIMEOUT`, `COORD_INGEST_MAXLEN`, `REDIS_CLUSTER`. */
  static fromEnv(
    env: NodeJS.ProcessEnv,
    redisUrl: string,
    keyspace: Keyspace,
    client?: CoordConnection,
  ): FanoutPublisher {
    return new FanoutPublisher({
      redisUrl,
      keyspace,
      timeoutMs: orDefault(env, COORD_VARS.LOGS_COORD_REDIS_TIMEOUT),
      disabled: orDefault(env, COORD_VARS.LOGS_COORD_DISABLED),
      ingestMaxLen: orDefault(env, COORD_VARS.COORD_INGEST_MAXLEN),
      client,
      cluster: orDefault(env, SHARED_VARS.REDIS_CLUSTER),
    });
  }

  get disabled(): boolean {
    return !!this.options.disabled;
  }

  /** Starts one XADD; returns at once. A failure is swallowed (and later sends are skipped). */
  publish(env: CoordOpEnvelope): void {
    if (this.options.disabled || this.failed) return;
    if (!this.client) {
      this.client =
        this.options.client ??
        openCoordConnection(this.options.redisUrl, {
          connectTimeoutMs: this.timeoutMs,
          commandTimeoutMs: this.timeoutMs,
          cluster: this.options.cluster,
        });
    }
    const p = this.client
      .callWithTimeout(
        this.options.client ? 0 : this.timeoutMs,
        'XADD',
        this.options.keyspace.coordIngest,
        'MAXLEN',
        '~',
        this.options.ingestMaxLen ?? DEFAULT_INGEST_MAXLEN,
        '*',
        ...envelopeFields(env),
      )
      .then(
        () => undefined,
        () => {
          this.failed = true;
        },
      );
    this.pending.push(p);
  }

  /** Waits for the sends in flight — never longer than the bound — and closes the connection. */
  async flush(): Promise<void> {
    if (!this.client) return;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((r) => (timer = setTimeout(r, this.timeoutMs)));
    await Promise.race([Promise.all(this.pending), bound]);
    if (timer) clearTimeout(timer);
    if (this.client !== this.options.client) this.client.disconnect();
  }
}

/** A fire-and-forget publisher never fails its caller: a bad value means the default. */
function orDefault<V extends Var>(env: NodeJS.ProcessEnv, v: V): ValueOf<V> {
  const r = readVar(env, v);
  return r.ok ? r.value : r.fallback;
}
