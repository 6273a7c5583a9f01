import { join, resolve } from 'node:path';
import { DEFAULT_SESSION_TTL_S, sessionTtlMs } from '@coordbus/coord';
import { BaseConfig, ConfigError, EnvReader, Secret, baseConfig } from '@coordbus/runtime';
import { SOURCE_STREAMS } from './ingest/row-mapper';
import { RETENTION_PATTERN, RetentionPolicy, parseRetention } from './retention/retention-policy';

export const SERVICE = 'telemetry-archivist';
export const DEFAULT_HTTP_PORT = 8085;

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
  /** `COORD_SESSION_TTL` (seconds, default 300): when the console shows a session as stale. */
  sessionTtlMs: number;
  /** `CONSOLE_POLL_MS` (default 250ms): how often the console's live feed reads the streams. */
  consolePollMs: number;
}

/** Reads and validates the archivist's environment; throws a ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ArchivistConfig {
  const reader = new EnvReader(env);
  const base = baseConfig(reader, { service: SERVICE, defaultHttpPort: DEFAULT_HTTP_PORT });
  const dataDir = resolve(reader.string('ARCHIVIST_DATA_DIR', './.coordbus-data/archive'));
  const databaseUrl = reader.optionalString('DATABASE_URL')
    ? reader.url('DATABASE_URL', '', ['postgres', 'postgresql'])
    : undefined;
  const pgSchema = reader.string('ARCHIVIST_PG_SCHEMA', 'public', {
    pattern: /^[a-z_][a-z0-9_]{0,62}$/,
    expected: 'a lower-case SQL identifier (letters, digits, _)',
  });
  const batchSize = reader.int('ARCHIVIST_BATCH_SIZE', 500, { min: 1, max: 5000 });
  const reclaimIdleMs = reader.durationMs('ARCHIVIST_RECLAIM_IDLE_MS', 30_000, { minMs: 100 });
  const retentionIntervalMs = reader.durationMs('ARCHIVIST_RETENTION_INTERVAL', 5 * 60_000, { minMs: 100 });
  const apiToken = reader.secret('COORDBUS_API_TOKEN');
  const operatorToken = reader.secret('COORDBUS_OPERATOR_TOKEN');
  const consolePollMs = reader.durationMs('CONSOLE_POLL_MS', 250, { minMs: 20, maxMs: 10_000 });
  let ttlMs = DEFAULT_SESSION_TTL_S * 1000;
  const problems: string[] = [];
  try {
    ttlMs = sessionTtlMs(env);
  } catch (err) {
    problems.push((err as Error).message);
  }
  const rawRetention = reader.string('ARCHIVIST_RETENTION', '', {
    pattern: RETENTION_PATTERN,
    expected: `comma-separated <stream>=<age>[/<rows>] rules (stream: *, ${SOURCE_STREAMS.join(', ')}, optionally :dead; e.g. *=30d,telemetryEvents=7d/100000)`,
  });
  let retention: RetentionPolicy = new Map();
  // Removed, not ignored: a deployment that still sets it expects raw archiving it no longer gets.
  if (env.ARCHIVIST_VALIDATE !== undefined) {
    problems.push(
      'ARCHIVIST_VALIDATE was removed: every entry is validated (compiled validation made the raw mode unnecessary); unset it',
    );
  }
  try {
    retention = parseRetention(rawRetention);
  } catch (err) {
    problems.push(
      `ARCHIVIST_RETENTION is invalid: ${(err as Error).message} (got ${JSON.stringify(rawRetention)})`,
    );
  }
  try {
    reader.finish();
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError([...err.problems, ...problems]);
    throw err;
  }
  if (problems.length) throw new ConfigError(problems);
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
