import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { CoordOpEnvelope, EnvelopeCodec, Keyspace, Schema, newUlid } from '@coordbus/envelope';
import { ServiceProcess, startService, TEST_DATABASE_URL, waitFor } from '@coordbus/testing';

export const codec = new EnvelopeCodec();

/** Local PostgreSQL (trust auth); each test uses its own schema and drops it. */
export const PG_URL = TEST_DATABASE_URL;

/** A built archivist process with its own data directory (removed by dispose). */
export interface Archivist {
  proc: ServiceProcess;
  url: string;
  dataDir: string;
  get<T = unknown>(path: string): Promise<{ status: number; body: T }>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

export async function startArchivist(
  keyspace: Keyspace,
  redisUrl: string,
  env: NodeJS.ProcessEnv = {},
  dataDir?: string,
): Promise<Archivist> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'archivist-data-'));
  const proc = await startService('telemetry-archivist', {
    REDIS_URL: redisUrl,
    COORDBUS_NAMESPACE: keyspace.namespace,
    ARCHIVIST_DATA_DIR: dir,
    ...env,
  });
  return {
    proc,
    url: proc.url,
    dataDir: dir,
    async get<T>(path: string) {
      const res = await fetch(`${proc.url}${path}`);
      return { status: res.status, body: (await res.json()) as T };
    },
    stop: (signal?: NodeJS.Signals) => proc.stop(signal),
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export function coordOp(
  i: number,
  over: Partial<{
    session: string;
    op: string;
    level: 'info' | 'warn' | 'error';
    ts: string;
    resource: string;
  }> = {},
): CoordOpEnvelope {
  return {
    v: 0,
    ts: over.ts ?? new Date(Date.UTC(2026, 5, 1, 10, 0, i)).toISOString(),
    service: 'coord',
    host: 'host-a',
    level: over.level ?? 'info',
    pid: 100 + i,
    target: 'coord',
    msg: `op ${i}`,
    fields: {
      op: over.op ?? 'lock',
      session: over.session ?? 's1',
      resource: over.resource ?? `res-${i % 3}`,
      peer: '',
      duration_ms: i,
      phase: 'post',
      exit_code: 0,
    },
  } as CoordOpEnvelope;
}

export async function xadd<T>(redis: Redis, stream: string, schema: Schema<T>, value: T): Promise<string> {
  return (await redis.xadd(stream, '*', ...codec.encode(schema, value))) as string;
}

export function coordEvent(kind: string, session: string, ts: string, payload: object, source = 'coord') {
  return {
    tx_id: newUlid(),
    tx_kind: kind,
    ts,
    ingress_ts: null,
    source,
    session_id: session,
    resource: null,
    payload,
  };
}

/** Total rows the archive API reports for a stream key, counting page by page. */
export async function countEvents(a: Archivist, query: string): Promise<number> {
  let n = 0;
  let cursor: string | null = null;
  do {
    const res: { status: number; body: { events: unknown[]; next_cursor: string | null } } = await a.get(
      `/v1/events?limit=1000&${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    if (res.status !== 200)
      throw new Error(`GET /v1/events?${query} answered ${res.status}: ${JSON.stringify(res.body)}`);
    n += res.body.events.length;
    cursor = res.body.next_cursor;
  } while (cursor);
  return n;
}

export async function waitForCount(
  a: Archivist,
  query: string,
  expected: number,
  timeoutMs = 15_000,
): Promise<void> {
  let last = -1;
  await waitFor(
    async () => (last = await countEvents(a, query)) === expected,
    `${expected} archived rows for ${query} (last saw ${last})`,
    timeoutMs,
    100,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last count ${last}`);
  });
}

export { PgProxy } from '@coordbus/testing';
