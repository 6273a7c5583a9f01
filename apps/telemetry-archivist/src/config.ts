import { join, resolve } from 'node:path';
import { ARCHIVIST_VARS as V, servicePort } from '@coordbus/config';
import { BaseConfig, EnvReader, Secret, baseConfig } from '@coordbus/runtime';
import { RetentionPolicy, parseRetention } from './retention/retention-policy';

export const SERVICE = 'telemetry-archivist';
export const DEFAULT_HTTP_PORT = servicePort(SERVICE);

export interface ArchivistConfig extends BaseConfig {
  /** `ARCHIVIST_DATA_DIR` (default ./.coordbus-data/archive): where the SQLite file lives. */
  dataDir: string;
  /** The SQLite file (`<dataDir>/archive.sqlite`). */
  sqliteFile: string;
  /** `DATABASE_URL`: PostgreSQL instead of SQLite when set. */
  databaseUrl?: string;
  /** `ARCHIVIST_PG_SCHEMA` (default public). */
  pgSchema: string;
  /** `ARCHIVIST_BATCH_SIZE` (default 500): most entries read and inserted per transaction. */
  batchSize: number;
  /** `ARCHIVIST_RECLAIM_IDLE_MS` (default 30s): entries pending this long on a dead replica are reclaimed. */
  reclaimIdleMs: number;
  /** `ARCHIVIST_RETENTION`: e.g. `*=30d,telemetryEvents=7d/100000,coordIngest:dead=/50000` (default: keep everything). */
  retention: RetentionPolicy;
  /** `ARCHIVIST_RETENTION_INTERVAL` (default 5m). */
  retentionIntervalMs: number;
  /**
   * `COORDBUS_API_TOKEN` (or `COORDBUS_API_TOKEN_FILE`): the read token of `/v1/*` and the console.
   * Required by every read when set, and whenever `HTTP_HOST` is not loopback.
   */
  apiToken?: Secret;
  /**
   * `COORDBUS_OPERATOR_TOKEN` (or `_FILE`): the console's actions (send, dispatch, force-release,
   * cancel, re-drive). Without it the console is read-only.
   */
  operatorToken?: Secret;
  /** `COORD_SESSION_TTL` (default 300 s): the console judges staleness by the TTL stored in Redis, this only when it cannot be read. */
  sessionTtlMs: number;
  /** `CONSOLE_POLL_MS` (default 250ms): how often the console's live feed reads the streams. */
  consolePollMs: number;
}

/** Reads and validates the archivist's environment; throws a ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ArchivistConfig {
  const reader = new EnvReader(env);
  const base = baseConfig(reader, { service: SERVICE, defaultHttpPort: DEFAULT_HTTP_PORT });
  const dataDir = resolve(reader.get(V.ARCHIVIST_DATA_DIR));
  const databaseUrl = reader.get(V.DATABASE_URL);
  const pgSchema = reader.get(V.ARCHIVIST_PG_SCHEMA);
  const batchSize = reader.get(V.ARCHIVIST_BATCH_SIZE);
  const reclaimIdleMs = reader.get(V.ARCHIVIST_RECLAIM_IDLE_MS);
  const retentionIntervalMs = reader.get(V.ARCHIVIST_RETENTION_INTERVAL);
  const apiToken = reader.secret(V.COORDBUS_API_TOKEN);
  const operatorToken = reader.secret(V.COORDBUS_OPERATOR_TOKEN);
  const consolePollMs = reader.get(V.CONSOLE_POLL_MS);
  const ttlMs = reader.get(V.COORD_SESSION_TTL);
  const rawRetention = reader.get(V.ARCHIVIST_RETENTION);
  let retention: RetentionPolicy = new Map();
  // Removed, not ignored: a deployment that still sets it expects raw archiving it no longer gets.
  if (env.ARCHIVIST_VALIDATE !== undefined) {
    reader.problem(
      'ARCHIVIST_VALIDATE was removed: every entry is validated (compiled validation made the raw mode unnecessary); unset it',
    );
  }
  try {
    retention = parseRetention(rawRetention);
  } catch (err) {
    reader.problem(
      `ARCHIVIST_RETENTION is invalid: ${(err as Error).message} (got ${JSON.stringify(rawRetention)})`,
    );
  }
  reader.finish();
  return {
    ...base,
    dataDir,
    sqliteFile: join(dataDir, 'archive.sqlite'),
    databaseUrl: databaseUrl || undefined,
    pgSchema,
    batchSize,
    reclaimIdleMs,
    retention,
    retentionIntervalMs,
    apiToken,
    operatorToken,
    sessionTtlMs: ttlMs,
    consolePollMs,
  };
}
