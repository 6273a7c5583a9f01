import { userInfo } from 'node:os';
import { ClientConfig, Pool, PoolClient } from 'pg';
import {
  ArchiveRow,
  ArchiveRowError,
  archiveUnavailable,
  ArchiveStats,
  ArchiveStore,
  EventFilter,
  INSERT_COLUMNS,
  RetentionRule,
  SessionAggregate,
  SessionQuery,
  StoredEvent,
  normaliseRows,
} from './archive-store';
import { MIGRATIONS, pendingMigrations } from './migrations';
import { searchTextOfData, tsVector } from './search-text';
import { buildEventQuery, buildSessionQuery, toAggregate, toStoredEvent } from './sql';

const DELETE_CHUNK = 5000;
/** deadlock_detected, serialization_failure */
const RETRYABLE = new Set(['40P01', '40001']);

/**
 * SQLSTATE classes that blame the data, not the database: 22 data exception (bad encoding,
 * out of range), 23 integrity (ON CONFLICT absorbs the unique ones), 54 program limit (an index
 * entry too large). Anything else — no SQLSTATE at all (connection refused/reset, timeout),
 * 08 connection, 53 resources, 57 shutdown, 40 conflicts past their retries — is the database's
 * state, and retrying the same rows later can succeed.
 */
export function isPgDataError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && /^(22|23|54)[0-9A-Z]{3}$/.test(code);
}

function compareRows(a: ArchiveRow, b: ArchiveRow): number {
  if (a.stream !== b.stream) return a.stream < b.stream ? -1 : 1;
  return a.entryMs - b.entryMs || a.entrySeq - b.entrySeq;
}
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** pg array types of INSERT_COLUMNS except archived_ms (one value per batch). */
const UNNEST_TYPES = [
  'text',
  'text',
  'bigint',
  'bigint',
  'text',
  'int',
  'text',
  'bigint',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  // search: a tsvector literal made by tsVector (our words and positions; PostgreSQL parses nothing).
  'tsvector',
];

/**
 * Client settings for a postgresql:// URL. Like libpq, a URL without a user name connects as
 * PGUSER or else the OS user (node-postgres alone would fall back to $USER, unset in many containers).
 */
export function pgConnectionConfig(url: string): ClientConfig {
  try {
    const u = new URL(url);
    if (!u.username) {
      u.username = encodeURIComponent(process.env.PGUSER || process.env.USER || userInfo().username);
      return { connectionString: u.toString() };
    }
  } catch {
    /* pg reports a malformed URL itself */
  }
  return { connectionString: url };
}

export interface PostgresStoreOptions {
  /** postgresql://... */
  url: string;
  /** Schema holding the archive tables (created when missing); default `public`. */
  schema?: string;
  /** Pool size (default 4). */
  poolSize?: number;
  /** How long to wait for a connection (default 10 s). */
  connectTimeoutMs?: number;
  /** How long a statement may wait for its reply before it fails as an outage (default 60 s). */
  queryTimeoutMs?: number;
}

/**
 * The archive in PostgreSQL, for scale: several archivist replicas share one database. A batch is
 * ONE `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING` (one statement, so one
 * transaction and one round trip whatever the batch size); the unique indexes make redelivered
 * or concurrently-inserted rows no-ops.
 */
export class PostgresArchiveStore implements ArchiveStore {
  readonly kind = 'postgres' as const;
  readonly schema: string;
  private pool?: Pool;
  private readonly insertSql: string;

  constructor(private readonly options: PostgresStoreOptions) {
    this.schema = options.schema ?? 'public';
    if (!SCHEMA_NAME.test(this.schema)) {
      throw new RangeError(
        `PostgreSQL schema name must match ${SCHEMA_NAME} (got ${JSON.stringify(this.schema)})`,
      );
    }
    const cols = [...INSERT_COLUMNS.filter((c) => c !== 'archived_ms'), 'search'];
    const arrays = UNNEST_TYPES.map((t, i) => `$${i + 1}::${t}[]`).join(', ');
    this.insertSql = `INSERT INTO events (${cols.join(', ')}, archived_ms) SELECT *, $${cols.length + 1}::bigint FROM unnest(${arrays}) ON CONFLICT DO NOTHING`;
  }

  /** Where the archive lives, without credentials (for logs and error messages). */
  get where(): string {
    try {
      const u = new URL(this.options.url);
      return `postgresql://${u.host}${u.pathname} (schema ${this.schema})`;
    } catch {
      return `postgresql (schema ${this.schema})`;
    }
  }

  async open(): Promise<void> {
    const pool = new Pool({
      ...pgConnectionConfig(this.options.url),
      max: this.options.poolSize ?? 4,
      // Every connection resolves unqualified names in the archive's schema.
      options: `-c search_path=${this.schema}`,
      // A connection that dies without a reset (a network partition, a proxy gone) must fail its
      // query rather than hang it: a handler that never settles keeps its consumer not ready for
      // good. Each failure is an outage the ingest waits out, never a dead letter.
      connectionTimeoutMillis: this.options.connectTimeoutMs ?? 10_000,
      query_timeout: this.options.queryTimeoutMs ?? 60_000,
      keepAlive: true,
    });
    // An idle client losing its connection must not crash the process; the next query reconnects.
    pool.on('error', () => undefined);
    this.pool = pool;
    try {
      await this.migrate();
    } catch (err) {
      // A refused or failed open leaves nothing running.
      this.pool = undefined;
      await pool.end().catch(() => undefined);
      throw err;
    }
  }

  private async migrate(): Promise<void> {
    await this.tx(async (c) => {
      // One migrator at a time across replicas sharing the database.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`coordbus-archive:${this.schema}`]);
      await c.query(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
      await c.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_ms BIGINT NOT NULL)',
      );
      const current = await this.versionWith(c);
      for (const m of pendingMigrations(current, this.where, MIGRATIONS)) {
        for (const stmt of m.postgres) await c.query(stmt);
        if (m.backfill === 'search-text') await this.backfillSearchText(c);
        await c.query(
          'INSERT INTO schema_migrations (version, description, applied_ms) VALUES ($1, $2, $3)',
          [m.version, m.description, Date.now()],
        );
      }
    });
  }

  /** Fills `search` for the rows archived before the column existed, in id chunks. */
  private async backfillSearchText(c: PoolClient): Promise<void> {
    for (let after = '0'; ;) {
      const page = await c.query<{ id: string; type: string | null; data: string }>(
        'SELECT id, type, data FROM events WHERE id > $1 ORDER BY id LIMIT 5000',
        [after],
      );
      const ids: string[] = [];
      const vectors: string[] = [];
      for (const r of page.rows) {
        const v = tsVector(searchTextOfData(r.type, r.data));
        if (!v) continue;
        ids.push(r.id);
        vectors.push(v);
      }
      if (ids.length) {
        await c.query(
          'UPDATE events SET search = v.s FROM unnest($1::bigint[], $2::tsvector[]) AS v(id, s) WHERE events.id = v.id',
          [ids, vectors],
        );
      }
      if (page.rows.length < 5000) break;
      after = page.rows[page.rows.length - 1].id;
    }
  }

  private async versionWith(c: PoolClient | Pool): Promise<number> {
    const r = await c.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations');
    return r.rows[0]?.v ?? 0;
  }

  private get handle(): Pool {
    if (!this.pool) throw new Error('PostgresArchiveStore is not open');
    return this.pool;
  }

  private async tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    const c = await this.handle.connect();
    let failure: Error | undefined;
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      failure = err as Error;
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      // A client that failed (a timed-out query may still answer late) is closed, not reused.
      c.release(failure);
    }
  }

  async insertBatch(input: readonly ArchiveRow[]): Promise<number> {
    if (!input.length) return 0;
    // Replicas inserting overlapping batches take index locks in one order, so they cannot deadlock.
    const rows = normaliseRows(input).sort(compareRows);
    const cols: unknown[][] = UNNEST_TYPES.map(() => new Array(rows.length));
    rows.forEach((r, i) => {
      cols[0][i] = r.stream;
      cols[1][i] = r.entryId;
      cols[2][i] = r.entryMs;
      cols[3][i] = r.entrySeq;
      cols[4][i] = r.type;
      cols[5][i] = r.version;
      cols[6][i] = r.data;
      cols[7][i] = r.tsMs;
      cols[8][i] = r.kind;
      cols[9][i] = r.session;
      cols[10][i] = r.resource;
      cols[11][i] = r.level;
      cols[12][i] = r.status;
      cols[13][i] = r.source;
      cols[14][i] = r.naturalKey;
      cols[15][i] = tsVector(r.text ?? null);
    });
    const params = [...cols, Date.now()];
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.handle.query(this.insertSql, params);
        return res.rowCount ?? 0;
      } catch (err) {
        // Natural-key conflicts between replicas can still deadlock; the statement is atomic, so retrying is safe.
        if (attempt < 5 && RETRYABLE.has((err as { code?: string }).code ?? '')) {
          await new Promise((r) => setTimeout(r, 5 * attempt + Math.random() * 20));
          continue;
        }
        // One statement for the whole batch: the database does not say which row; the ingest splits.
        if (isPgDataError(err)) {
          const e = err as { message: string; code: string };
          throw new ArchiveRowError(`PostgreSQL refused the row: ${e.message} (SQLSTATE ${e.code})`);
        }
        throw archiveUnavailable(`insert into ${this.where}`, err);
      }
    }
  }

  async queryEvents(filter: EventFilter): Promise<StoredEvent[]> {
    const built = buildEventQuery(filter, 'postgres');
    if (!built) return [];
    const res = await this.handle.query(built.sql, built.params);
    return res.rows.map(toStoredEvent);
  }

  async sessionAggregates(query: SessionQuery): Promise<SessionAggregate[]> {
    const { sql, params } = buildSessionQuery(query, 'postgres');
    const res = await this.handle.query(sql, params);
    return res.rows.map(toAggregate);
  }

  async applyRetention(stream: string, rule: RetentionRule, nowMs: number): Promise<number> {
    const pool = this.handle;
    let deleted = 0;
    const chunked = async (where: string, params: unknown[]) => {
      const sql = `DELETE FROM events WHERE id IN (SELECT id FROM events WHERE stream = $1 AND ${where} LIMIT ${DELETE_CHUNK})`;
      for (;;) {
        const n = (await pool.query(sql, [stream, ...params])).rowCount ?? 0;
        deleted += n;
        if (n < DELETE_CHUNK) break;
      }
    };
    if (rule.maxAgeMs !== undefined) await chunked('entry_ms < $2', [nowMs - rule.maxAgeMs]);
    if (rule.maxRows !== undefined) {
      const cutoff = await pool.query<{ entry_ms: string; entry_seq: string }>(
        'SELECT entry_ms, entry_seq FROM events WHERE stream = $1 ORDER BY entry_ms DESC, entry_seq DESC LIMIT 1 OFFSET $2',
        [stream, rule.maxRows],
      );
      const c = cutoff.rows[0];
      if (c) await chunked('(entry_ms, entry_seq) <= ($2, $3)', [c.entry_ms, c.entry_seq]);
    }
    return deleted;
  }

  async stats(): Promise<ArchiveStats> {
    const pool = this.handle;
    const counts = await pool.query<{ stream: string; n: string }>(
      'SELECT stream, COUNT(*) AS n FROM events GROUP BY stream',
    );
    const size = await pool.query<{ size: string }>(
      "SELECT pg_total_relation_size('events') + pg_total_relation_size('schema_migrations') AS size",
    );
    return {
      sizeBytes: Number(size.rows[0]?.size ?? 0),
      rowsByStream: Object.fromEntries(counts.rows.map((r) => [r.stream, Number(r.n)])),
    };
  }

  async schemaVersion(): Promise<number> {
    return this.versionWith(this.handle);
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.end();
  }
}
