import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { DEFAULT_MAX_ENTRY_BYTES, Keyspace } from '@coordbus/envelope';
import { Secret } from './secret';

/** Thrown by `EnvReader.finish()`; its message lists every bad variable and what it expects. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `250ms`, `5s`, `10m`, `1h`, `7d` or a bare number of milliseconds; undefined when malformed. */
export function parseDurationMs(raw: string): number | undefined {
  const m = DURATION.exec(raw.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNIT_MS[m[2] ?? 'ms']);
}

/**
 * Typed reads of environment variables. Each read records a problem instead of throwing, so
 * `finish()` reports every bad variable at once, each named with what it expects.
 */
export class EnvReader {
  private readonly problems: string[] = [];

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  private raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v === '' ? undefined : v;
  }

  private problem(name: string, expected: string, got: string): void {
    this.problems.push(`${name} must be ${expected} (got ${JSON.stringify(got)})`);
  }

  string(name: string, fallback: string, options: { pattern?: RegExp; expected?: string } = {}): string {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    if (options.pattern && !options.pattern.test(v)) {
      this.problem(name, options.expected ?? `a string matching ${options.pattern}`, v);
      return fallback;
    }
    return v;
  }

  optionalString(name: string): string | undefined {
    return this.raw(name);
  }

  int(name: string, fallback: number, options: { min?: number; max?: number } = {}): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = options;
    if (!/^-?\d+$/.test(v.trim()) || n < min || n > max) {
      this.problem(name, `an integer from ${min} to ${max}`, v);
      return fallback;
    }
    return n;
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const s = v.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(s)) return true;
    if (['0', 'false', 'no', 'off'].includes(s)) return false;
    this.problem(name, 'a boolean (1/0, true/false, yes/no, on/off)', v);
    return fallback;
  }

  /** A duration in milliseconds: `250ms`, `5s`, `10m`, `1h`, `7d` or a bare number of ms. */
  durationMs(name: string, fallbackMs: number, options: { minMs?: number; maxMs?: number } = {}): number {
    const v = this.raw(name);
    if (v === undefined) return fallbackMs;
    const ms = parseDurationMs(v);
    const { minMs = 0, maxMs = Number.MAX_SAFE_INTEGER } = options;
    if (ms === undefined || ms < minMs || ms > maxMs) {
      this.problem(name, `a duration like 250ms, 5s, 10m, 1h from ${minMs} ms to ${maxMs} ms`, v);
      return fallbackMs;
    }
    return ms;
  }

  enum<T extends string>(name: string, values: readonly T[], fallback: T): T {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    if (!(values as readonly string[]).includes(v)) {
      this.problem(name, `one of ${values.join(', ')}`, v);
      return fallback;
    }
    return v as T;
  }

  url(name: string, fallback: string, protocols: string[]): string {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    try {
      const u = new URL(v);
      if (!protocols.includes(u.protocol.replace(/:$/, ''))) throw new Error('protocol');
      return v;
    } catch {
      this.problem(name, `a URL with scheme ${protocols.map((p) => `${p}://`).join(' or ')}`, v);
      return fallback;
    }
  }

  /**
   * A credential from `NAME` or from the file named by `NAME_FILE` (a mounted secret; one trailing
   * newline is ignored). Giving both, an unreadable file or a value shorter than `minLength` is a
   * problem; the value itself never appears in a problem message.
   */
  secret(name: string, options: { minLength?: number } = {}): Secret | undefined {
    const { minLength = 16 } = options;
    const direct = this.raw(name);
    const file = this.raw(`${name}_FILE`);
    if (direct !== undefined && file !== undefined) {
      this.problems.push(`${name} and ${name}_FILE are both set: give one`);
      return undefined;
    }
    let value = direct;
    if (file !== undefined) {
      try {
        value = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        this.problems.push(
          `${name}_FILE names a file that cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}: ${file})`,
        );
        return undefined;
      }
    }
    if (value === undefined) return undefined;
    if (value.length < minLength || /\s/.test(value)) {
      this.problems.push(
        `${name}${file !== undefined ? '_FILE' : ''} must hold at least ${minLength} characters without spaces (got ${value.length} characters; value not shown)`,
      );
      return undefined;
    }
    return new Secret(value);
  }

  /** Throws a ConfigError listing every problem seen so far. */
  finish(): void {
    if (this.problems.length) throw new ConfigError([...this.problems]);
  }
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** What every coordbus service reads from its environment. */
export interface BaseConfig {
  service: string;
  /** `REDIS_URL` (default redis://127.0.0.1:6379; rediss:// for TLS; user:password@ for ACLs). */
  redisUrl: string;
  /**
   * `REDIS_CLUSTER` (default false): `REDIS_URL` names one seed node of a Redis Cluster and every
   * connection is an ioredis `Cluster` (see `createRedis`).
   */
  redisCluster: boolean;
  /** `COORDBUS_NAMESPACE`: prefix of every key (default empty). */
  namespace: string;
  keyspace: Keyspace;
  /** `HTTP_PORT`: /healthz, /readyz, /metrics (0 picks a free port). */
  httpPort: number;
  /**
   * `HTTP_HOST` (default 127.0.0.1: reachable from this machine only). Containers set 0.0.0.0,
   * where the network is the boundary; then the archivist's API needs `COORDBUS_API_TOKEN`.
   */
  httpHost: string;
  logLevel: LogLevel;
  /** `COORDBUS_CONSUMER`: consumer name in every group (default `<hostname>-<pid>`, stable per replica). */
  consumer: string;
  /** `COORDBUS_MAX_ENTRY_BYTES`: largest stream entry accepted (default 64 KiB). */
  maxEntryBytes: number;
  /** `SHUTDOWN_TIMEOUT_MS`: how long a graceful stop may take before the process gives up (default 20 s). */
  shutdownTimeoutMs: number;
  /** Consumer tuning shared by every stream loop of the service (`STREAM_*`). */
  streams: {
    /** `STREAM_BATCH_SIZE`: XREADGROUP COUNT (default 100). */
    batchSize: number;
    /** `STREAM_CONCURRENCY`: handlers in flight per stream loop (default 64). */
    concurrency: number;
    /** `STREAM_MAX_DELIVERIES`: deliveries before an entry is dead-lettered (default 5). */
    maxDeliveries: number;
    /** `STREAM_RECLAIM_IDLE_MS`: idle time before another replica takes over a pending entry (default 30 s). */
    reclaimIdleMs: number;
  };
}

/** Reads the variables every service shares. Call `env.finish()` after reading your own. */
export function baseConfig(
  env: EnvReader,
  options: { service: string; defaultHttpPort: number },
): BaseConfig {
  const namespace = env.string('COORDBUS_NAMESPACE', '', {
    pattern: /^[A-Za-z0-9_.:-]*$/,
    expected: "letters, digits, '_', '.', ':' or '-'",
  });
  return {
    service: options.service,
    redisUrl: env.url('REDIS_URL', 'redis://127.0.0.1:6379', ['redis', 'rediss']),
    redisCluster: env.bool('REDIS_CLUSTER', false),
    namespace,
    keyspace: new Keyspace(/^[A-Za-z0-9_.:-]*$/.test(namespace) ? namespace : ''),
    httpPort: env.int('HTTP_PORT', options.defaultHttpPort, { min: 0, max: 65535 }),
    httpHost: env.string('HTTP_HOST', '127.0.0.1'),
    logLevel: env.enum('LOG_LEVEL', LOG_LEVELS, 'info'),
    consumer: env.string('COORDBUS_CONSUMER', `${hostname()}-${process.pid}`, {
      pattern: /^[A-Za-z0-9_.:-]{1,200}$/,
      expected: "1-200 letters, digits, '_', '.', ':' or '-'",
    }),
    maxEntryBytes: env.int('COORDBUS_MAX_ENTRY_BYTES', DEFAULT_MAX_ENTRY_BYTES, {
      min: 1024,
      max: 64 * 1024 * 1024,
    }),
    shutdownTimeoutMs: env.durationMs('SHUTDOWN_TIMEOUT_MS', 20_000, { minMs: 100 }),
    streams: {
      batchSize: env.int('STREAM_BATCH_SIZE', 100, { min: 1, max: 10_000 }),
      concurrency: env.int('STREAM_CONCURRENCY', 64, { min: 1, max: 10_000 }),
      maxDeliveries: env.int('STREAM_MAX_DELIVERIES', 5, { min: 1, max: 1000 }),
      reclaimIdleMs: env.durationMs('STREAM_RECLAIM_IDLE_MS', 30_000, { minMs: 100 }),
    },
  };
}
