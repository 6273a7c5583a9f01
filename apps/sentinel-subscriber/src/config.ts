import { BaseConfig, baseConfig, ConfigError, EnvReader } from '@coordbus/runtime';

export const SENTINEL_SOURCES = ['event-manager', 'fs-poll'] as const;
export type SentinelSourceKind = (typeof SENTINEL_SOURCES)[number];

/** Everything the sentinel reads from its environment (validated at start). */
export interface SentinelConfig {
  base: BaseConfig;
  /** `SENTINEL_SOURCE`: `event-manager` (the coord events stream, default) or `fs-poll`. */
  source: SentinelSourceKind;
  /** `COORD_ROOT`: the coord file root, required with `fs-poll`. */
  coordRoot: string | undefined;
  /** `SENTINEL_TICK_MS`: pause between fs-poll scans (default 1000 ms). */
  tickMs: number;
  /** `SENTINEL_BRIDGE`: with fs-poll, publish what is seen to the coord events stream (default off). */
  bridge: boolean;
  /** `SENTINEL_FS_STATE`: file keeping fs-poll's last committed snapshot across restarts (optional). */
  fsStatePath: string | undefined;
  /** `SENTINEL_MAX_BATCH`: most events per poll (default 256). */
  maxBatch: number;
  /** `COORD_SESSION_TTL` in seconds (default 300, fractions allowed; the same variable the coord CLI reads). */
  sessionTtlMs: number;
  /** `SENTINEL_CULL`: run the liveness cull pass (default on). */
  cull: boolean;
  /** `SENTINEL_CULL_INTERVAL_MS`: how often the cull pass runs (default TTL/10, between 250 ms and 30 s). */
  cullIntervalMs: number;
  /** `SENTINEL_DEDUP_TTL`: how long a handled `(source, tx_id)` is remembered (default 7d). */
  dedupTtlMs: number;
  /** `SENTINEL_CLAIM_IDLE_MS`: a dead replica's pending events are reclaimed after this (default 30 s). */
  claimIdleMs: number;
  /** `SENTINEL_BLOCK_MS`: how long one stream poll waits for new events (default 1000 ms). */
  blockMs: number;
  /** `SENTINEL_MAX_DELIVERIES`: an event not handled after this many deliveries is dead-lettered (default 5). */
  maxDeliveries: number;
  /** `SENTINEL_OBSERVATIONS_MAXLEN`: approximate safety cap of the observations stream (default 1 000 000). */
  observationsMaxLen: number;
}

export const SENTINEL_SERVICE = 'sentinel-subscriber';
export const SENTINEL_HTTP_PORT = 8082;

/** Reads and validates the sentinel's configuration; throws a ConfigError naming every bad variable. */
export function loadSentinelConfig(envVars: NodeJS.ProcessEnv = process.env): SentinelConfig {
  const env = new EnvReader(envVars);
  const base = baseConfig(env, { service: SENTINEL_SERVICE, defaultHttpPort: SENTINEL_HTTP_PORT });
  const source = env.enum('SENTINEL_SOURCE', SENTINEL_SOURCES, 'event-manager');
  const coordRoot = env.optionalString('COORD_ROOT');
  const problems: string[] = [];
  // Seconds, fractions allowed — parsed like the coord CLI does, so both judge liveness alike.
  const rawTtl = env.optionalString('COORD_SESSION_TTL');
  let sessionTtlMs = 300_000;
  if (rawTtl !== undefined) {
    const seconds = Number(rawTtl);
    if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 30 * 86_400) {
      problems.push(
        `COORD_SESSION_TTL must be a positive number of seconds up to 2592000 (got ${JSON.stringify(rawTtl)})`,
      );
    } else sessionTtlMs = Math.round(seconds * 1000);
  }
  const config: SentinelConfig = {
    base,
    source,
    coordRoot,
    tickMs: env.int('SENTINEL_TICK_MS', 1000, { min: 10, max: 600_000 }),
    bridge: env.bool('SENTINEL_BRIDGE', false),
    fsStatePath: env.optionalString('SENTINEL_FS_STATE'),
    maxBatch: env.int('SENTINEL_MAX_BATCH', 256, { min: 1, max: 10_000 }),
    sessionTtlMs,
    cull: env.bool('SENTINEL_CULL', true),
    cullIntervalMs: env.int(
      'SENTINEL_CULL_INTERVAL_MS',
      Math.min(30_000, Math.max(250, Math.round(sessionTtlMs / 10))),
      {
        min: 50,
        max: 3_600_000,
      },
    ),
    dedupTtlMs: env.durationMs('SENTINEL_DEDUP_TTL', 7 * 86_400_000, { minMs: 1000 }),
    claimIdleMs: env.int('SENTINEL_CLAIM_IDLE_MS', 30_000, { min: 100, max: 86_400_000 }),
    blockMs: env.int('SENTINEL_BLOCK_MS', 1000, { min: 10, max: 60_000 }),
    maxDeliveries: env.int('SENTINEL_MAX_DELIVERIES', 5, { min: 1, max: 1000 }),
    observationsMaxLen: env.int('SENTINEL_OBSERVATIONS_MAXLEN', 1_000_000, { min: 1000 }),
  };
  if (source === 'fs-poll' && !coordRoot)
    problems.push('COORD_ROOT must be set (the coord file root) when SENTINEL_SOURCE=fs-poll');
  if (config.bridge && source !== 'fs-poll')
    problems.push(`SENTINEL_BRIDGE=1 needs SENTINEL_SOURCE=fs-poll (got ${JSON.stringify(source)})`);
  try {
    env.finish();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.unshift(...err.problems);
  }
  if (problems.length) throw new ConfigError(problems);
  return config;
}
