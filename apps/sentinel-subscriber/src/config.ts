import { SENTINEL_VARS as V, SentinelSourceKind, servicePort } from '@coordbus/config';
import { BaseConfig, baseConfig, EnvReader } from '@coordbus/runtime';

export { SENTINEL_SOURCES, type SentinelSourceKind } from '@coordbus/config';

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
  /** `COORD_SESSION_TTL` (default 300 s; a bare number is seconds; the same definition the coord CLI reads). */
  sessionTtlMs: number;
  /** `SENTINEL_CULL`: run the liveness cull pass (default on). */
  cull: boolean;
  /** COORD_SESSION_TTL was given: it seeds the stored session TTL (see CullService.seed). */
  sessionTtlSet: boolean;
  /** `SENTINEL_CULL_INTERVAL_MS`: how often the cull pass runs (default TTL/10, between 250 ms and 30 s). */
  cullIntervalMs: number;
  /** SENTINEL_CULL_INTERVAL_MS was not given: each pass takes its interval from the stored TTL. */
  cullIntervalFollowsTtl: boolean;
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
export const SENTINEL_HTTP_PORT = servicePort(SENTINEL_SERVICE);

/** Reads and validates the sentinel's configuration; throws a ConfigError naming every bad variable. */
/** The default cull interval for a session TTL: a tenth of it, between 250 ms and 30 s. */
export function cullIntervalFor(sessionTtlMs: number): number {
  return Math.min(30_000, Math.max(250, Math.round(sessionTtlMs / 10)));
}

export function loadSentinelConfig(envVars: NodeJS.ProcessEnv = process.env): SentinelConfig {
  const env = new EnvReader(envVars);
  const base = baseConfig(env, { service: SENTINEL_SERVICE, defaultHttpPort: SENTINEL_HTTP_PORT });
  const source = env.get(V.SENTINEL_SOURCE);
  const coordRoot = env.get(V.COORD_ROOT);
  const sessionTtlMs = env.get(V.COORD_SESSION_TTL);
  const config: SentinelConfig = {
    base,
    source,
    coordRoot,
    tickMs: env.get(V.SENTINEL_TICK_MS),
    bridge: env.get(V.SENTINEL_BRIDGE),
    fsStatePath: env.get(V.SENTINEL_FS_STATE),
    maxBatch: env.get(V.SENTINEL_MAX_BATCH),
    sessionTtlMs,
    sessionTtlSet: env.isSet(V.COORD_SESSION_TTL),
    cull: env.get(V.SENTINEL_CULL),
    cullIntervalMs: env.get(V.SENTINEL_CULL_INTERVAL_MS, cullIntervalFor(sessionTtlMs)),
    cullIntervalFollowsTtl: !env.isSet(V.SENTINEL_CULL_INTERVAL_MS),
    dedupTtlMs: env.get(V.SENTINEL_DEDUP_TTL),
    claimIdleMs: env.get(V.SENTINEL_CLAIM_IDLE_MS),
    blockMs: env.get(V.SENTINEL_BLOCK_MS),
    maxDeliveries: env.get(V.SENTINEL_MAX_DELIVERIES),
    observationsMaxLen: env.get(V.SENTINEL_OBSERVATIONS_MAXLEN),
  };
  if (source === 'fs-poll' && !coordRoot)
    env.problem('COORD_ROOT must be set (the coord file root) when SENTINEL_SOURCE=fs-poll');
  if (config.bridge && source !== 'fs-poll')
    env.problem(`SENTINEL_BRIDGE=1 needs SENTINEL_SOURCE=fs-poll (got ${JSON.stringify(source)})`);
  env.finish();
  return config;
}
