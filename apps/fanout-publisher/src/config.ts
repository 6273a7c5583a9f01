import { FANOUT_VARS as V, servicePort } from '@coordbus/config';
import { BaseConfig, baseConfig, EnvReader } from '@coordbus/runtime';

export const FANOUT_SERVICE = 'fanout-publisher';
export const FANOUT_HTTP_PORT = servicePort(FANOUT_SERVICE);

/** Everything the fanout-publisher reads from its environment (validated at start). */
export interface FanoutConfig {
  base: BaseConfig;
  /** `FANOUT_REPLAY_MAXLEN`: approximate cap of `logs:stream:coord` (default 10000, seed 000). */
  replayMaxLen: number;
  /** `FANOUT_DEDUP_WINDOW_MS`: how long a fanned-out ingest id is remembered against redelivery (default 5m). */
  dedupWindowMs: number;
  /** `FANOUT_INGEST_HARD_CAP`: the ingest stream is trimmed ack-aware, and never kept longer than this (default 1 000 000). */
  ingestHardCap: number;
  /** `FANOUT_TRIM_INTERVAL_MS`: time between ack-aware trims of the ingest stream (default 5s). */
  trimIntervalMs: number;
  /** `FANOUT_BATCH_SIZE`: most entries one read returns (default 200). */
  batchSize: number;
  /** `FANOUT_RECLAIM_IDLE_MS`: entries pending this long on a dead replica are reclaimed (default 30s). */
  reclaimIdleMs: number;
}

/** Reads and validates the configuration; throws a ConfigError naming every bad variable. */
export function loadFanoutConfig(vars: NodeJS.ProcessEnv = process.env): FanoutConfig {
  const env = new EnvReader(vars);
  const base = baseConfig(env, { service: FANOUT_SERVICE, defaultHttpPort: FANOUT_HTTP_PORT });
  const config: FanoutConfig = {
    base,
    replayMaxLen: env.get(V.FANOUT_REPLAY_MAXLEN),
    dedupWindowMs: env.get(V.FANOUT_DEDUP_WINDOW_MS),
    ingestHardCap: env.get(V.FANOUT_INGEST_HARD_CAP),
    trimIntervalMs: env.get(V.FANOUT_TRIM_INTERVAL_MS),
    batchSize: env.get(V.FANOUT_BATCH_SIZE),
    reclaimIdleMs: env.get(V.FANOUT_RECLAIM_IDLE_MS),
  };
  env.finish();
  return config;
}
