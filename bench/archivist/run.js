#!/usr/bin/env node
'use strict';
/* global fetch */
// bench/archivist: events/s archived into SQLite and PostgreSQL at several batch sizes, for the
// store alone and end to end from the stream (the BUILT service as a process), each beside a
// same-run baseline without the archivist:
//   store:  raw better-sqlite3 prepared INSERT loop in one transaction per batch / raw pg
//           multi-row INSERT, both into a table with the same columns and no indexes;
//   e2e:    a raw XREADGROUP + XACK loop over the same entries (no decode, no insert), and the
//           envelope codec's decode+validate alone (what the transport does per entry).
//
//   npm run build && node bench/archivist/run.js [--rows 50000] [--e2e-rows 20000] [--batches 10,100,1000] [--no-pg] [--no-e2e] [--no-store]
//
// PostgreSQL: DATABASE_URL (default postgresql://127.0.0.1:5432/test); a bench schema is created
// and dropped. Redis: starts its own redis-server on a free port unless REDIS_URL is set.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const {
  arg,
  argString,
  deleteKeys,
  dist,
  fmt,
  hasFlag,
  nowMs: now,
  rate,
  requireBuilt,
  sleep,
  startRedis,
  startService,
  stopProcess,
  procCpuMs,
  threadCpuMs,
  report: reportTarget,
} = require('../lib');

requireBuilt('apps/telemetry-archivist/main.js');
const ROWS = arg('rows', 50000);
const E2E_ROWS = arg('e2e-rows', 20000);
const BATCHES = String(argString('batches', '10,100,1000')).split(',').map(Number);
const WITH_PG = !hasFlag('no-pg');
const WITH_E2E = !hasFlag('no-e2e');
const WITH_STORE = !hasFlag('no-store');
const PG_URL = process.env.DATABASE_URL || 'postgresql://127.0.0.1:5432/test';

const Database = require('better-sqlite3');
const { Pool } = require('pg');
const Redis = require('ioredis');
const { EnvelopeCodec, Schemas, Keyspace } = require(dist('libs/envelope/src/index.js'));
const { SqliteArchiveStore } = require(dist('apps/telemetry-archivist/src/store/sqlite-archive-store.js'));
const { PostgresArchiveStore, pgConnectionConfig } = require(
  dist('apps/telemetry-archivist/src/store/postgres-archive-store.js'),
);
const { archivedStreamRefs, contentFromFields, toArchiveRow } = require(
  dist('apps/telemetry-archivist/src/ingest/row-mapper.js'),
);
const { INSERT_COLUMNS, rowValues } = require(dist('apps/telemetry-archivist/src/store/archive-store.js'));

const codec = new EnvelopeCodec();

function envelope(i) {
  return {
    v: 0,
    ts: new Date(Date.UTC(2026, 5, 1) + i).toISOString(),
    service: 'coord',
    host: 'bench-host',
    level: i % 50 ? 'info' : 'warn',
    pid: 4242,
    target: 'coord',
    msg: `coord.lock end`,
    fields: {
      op: i % 3 ? 'lock' : 'heartbeat',
      session: `session-${i % 40}`,
      resource: `repo/file-${i % 200}.ts`,
      peer: '',
      duration_ms: i % 97,
      phase: 'post',
      exit_code: 0,
    },
  };
}

/** ROWS archive rows of the coord ingest stream, mapped once (the store benchmark measures the store). */
function makeRows(n, stream) {
  const ref = archivedStreamRefs(new Keyspace('bench')).find((r) => r.key === 'coordIngest');
  const base = Date.UTC(2026, 5, 1);
  const rows = new Array(n);
  for (let i = 0; i < n; i++) {
    const fields = codec.encode(Schemas.coordOp, envelope(i), { validate: false });
    const rec = { type: fields[1], v: fields[3], data: fields[5] };
    rows[i] = toArchiveRow(
      { ...ref, name: stream ?? ref.name },
      `${base + Math.floor(i / 10)}-${i % 10}`,
      contentFromFields(rec),
    );
  }
  return rows;
}

const results = [];
/** `cpuMs`: CPU time the work took (of this process, or of the archivist process end to end). */
function report(section, name, batch, n, ms, baseline, cpuMs) {
  const r = rate(n, ms);
  const cpuRate = cpuMs ? rate(n, cpuMs) : null;
  results.push({ section, name, batch, rate: r, cpuRate });
  const ratio = baseline ? `  (${((r / baseline) * 100).toFixed(0)}% of baseline)` : '';
  const cpu = cpuRate ? `  ${fmt(cpuRate)} rows/CPU-s` : '';
  console.log(
    `  ${name.padEnd(48)} batch ${String(batch).padStart(5)}  ${fmt(r).padStart(9)} rows/s  ${String(Math.round(ms)).padStart(6)} ms${ratio}${cpu}`,
  );
  return r;
}

// ---------------------------------------------------------------------------------------------
/** Small batches are slow per row (a commit each); fewer rows keep the run short without changing the rate. */
const rowsFor = (rows, batch) => rows.slice(0, Math.min(rows.length, batch * 1000));

/** Opens `store`, inserts `rows` in batches twice (fresh, then all duplicates: a full redelivery), closes it. */
async function storeRuns(section, name, store, rows, batch, base) {
  await store.open();
  for (const suffix of ['', ' (all duplicates)']) {
    const t = now();
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < rows.length; i += batch) await store.insertBatch(rows.slice(i, i + batch));
    const cpu = process.cpuUsage(cpu0);
    report(
      section,
      `${name}.insertBatch${suffix}`,
      batch,
      rows.length,
      now() - t,
      base,
      (cpu.user + cpu.system) / 1000,
    );
  }
  await store.close();
}

async function benchSqliteStore(allRows) {
  console.log(`\nSQLite, store alone (up to ${fmt(allRows.length)} rows per run, WAL, synchronous=NORMAL)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-archivist-'));
  try {
    for (const batch of BATCHES) {
      const rows = rowsFor(allRows, batch);
      // Baseline: the same columns, no indexes, a prepared INSERT per row in one transaction per batch.
      const rawFile = path.join(dir, `raw-${batch}.sqlite`);
      const db = new Database(rawFile);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec(`CREATE TABLE events (id INTEGER PRIMARY KEY, ${INSERT_COLUMNS.join(', ')})`);
      const stmt = db.prepare(
        `INSERT INTO events (${INSERT_COLUMNS.join(', ')}) VALUES (${INSERT_COLUMNS.map(() => '?').join(', ')})`,
      );
      const tx = db.transaction((slice) => {
        for (const r of slice) stmt.run(rowValues(r, 0));
      });
      const t = now();
      for (let i = 0; i < rows.length; i += batch) tx(rows.slice(i, i + batch));
      const base = report(
        'sqlite-store',
        'raw better-sqlite3 (no indexes) [baseline]',
        batch,
        rows.length,
        now() - t,
      );
      db.close();

      // The baseline of the end-to-end target: inserts on the caller's thread, no thread hop.
      const inline = new SqliteArchiveStore(path.join(dir, `store-${batch}`, 'archive.sqlite'), {
        writer: 'inline',
      });
      await storeRuns('sqlite-store', 'SqliteArchiveStore', inline, rows, batch, base);
      // What the service runs: the same inserts on the writer thread (CPU counts every thread).
      const threaded = new SqliteArchiveStore(path.join(dir, `thread-${batch}`, 'archive.sqlite'));
      await storeRuns('sqlite-store', 'SqliteArchiveStore (writer thread)', threaded, rows, batch, base);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function benchPgStore(allRows) {
  console.log(`\nPostgreSQL, store alone (up to ${fmt(allRows.length)} rows per run, ${PG_URL})`);
  const schema = `bench_archivist_${process.pid}`;
  const admin = new Pool({ ...pgConnectionConfig(PG_URL), max: 1 });
  try {
    for (const batch of BATCHES) {
      const rows = rowsFor(allRows, batch);
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.query(`CREATE SCHEMA ${schema}`);
      // Baseline: one multi-row INSERT ... VALUES per batch into an unindexed table with the same columns.
      await admin.query(
        `CREATE TABLE ${schema}.raw_events (id BIGSERIAL PRIMARY KEY, stream TEXT, entry_id TEXT, entry_ms BIGINT, entry_seq BIGINT, type TEXT, version INT, data TEXT, ts_ms BIGINT, kind TEXT, session TEXT, resource TEXT, level TEXT, status TEXT, source TEXT, natural_key TEXT, archived_ms BIGINT)`,
      );
      const cols = INSERT_COLUMNS.length;
      const t = now();
      for (let i = 0; i < rows.length; i += batch) {
        const slice = rows.slice(i, i + batch);
        const values = [];
        const tuples = slice.map((r, k) => {
          values.push(...rowValues(r, 0));
          return `(${Array.from({ length: cols }, (_, c) => `$${k * cols + c + 1}`).join(', ')})`;
        });
        await admin.query(
          `INSERT INTO ${schema}.raw_events (${INSERT_COLUMNS.join(', ')}) VALUES ${tuples.join(', ')}`,
          values,
        );
      }
      const base = report(
        'pg-store',
        'raw pg multi-row INSERT (no indexes) [baseline]',
        batch,
        rows.length,
        now() - t,
      );

      const store = new PostgresArchiveStore({ url: PG_URL, schema, poolSize: 1 });
      await storeRuns('pg-store', 'PostgresArchiveStore', store, rows, batch, base);
    }
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await admin.end();
  }
}

// ---------------------------------------------------------------------------------------------
async function fillStream(redis, stream, n) {
  for (let i = 0; i < n; i += 1000) {
    const p = redis.pipeline();
    for (let k = i; k < Math.min(n, i + 1000); k++)
      p.xadd(stream, '*', ...codec.encode(Schemas.coordOp, envelope(k), { validate: false }));
    await p.exec();
  }
}

/** The built archivist; resolves with its process and HTTP base URL (from its start line). */
async function startArchivist(env) {
  const { child, match } = await startService('telemetry-archivist', {
    env,
    ready: /"http":"([^"]+)"[^\n]*started/,
    stderr: 'capture',
  });
  return { child, url: match[1].replace('[::1]', '127.0.0.1') };
}

async function insertedSoFar(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /coordbus_archive_inserted_total\{stream="coordIngest"[^}]*\} (\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}

/** The archivist group's progress on a stream: entries delivered and entries not yet acked. */
async function groupProgress(redis, stream) {
  const groups = await redis.xinfo('GROUPS', stream).catch(() => []);
  for (const g of groups) {
    const info = {};
    for (let i = 0; i < g.length; i += 2) info[g[i]] = g[i + 1];
    if (info.name === 'archivist')
      return { read: Number(info['entries-read'] ?? 0), pending: Number(info.pending) };
  }
  return { read: 0, pending: 0 };
}

/**
 * CPU per row of the archivist's main thread, of its busiest other thread (the SQLite writer
 * thread; GC helpers and libuv's pool come far behind) and of redis-server, between two samples.
 */
function cpuSplit(pid, redisPid) {
  return { threads: threadCpuMs(pid), redis: redisPid ? procCpuMs(redisPid) : NaN };
}
function cpuSplitLine(pid, a, b, rows) {
  let other = 0;
  for (const [tid, ms] of b.threads) if (tid !== pid) other = Math.max(other, ms - (a.threads.get(tid) ?? 0));
  const us = (ms) => ((ms * 1000) / rows).toFixed(1);
  const main = b.threads.get(pid) - a.threads.get(pid);
  return `CPU/row: archivist main thread ${us(main)} us, busiest other thread ${us(other)} us, redis-server ${us(b.redis - a.redis)} us`;
}

async function benchE2e(redisUrl, label, extraEnv, baselineByBatch, redisPid) {
  console.log(
    `\nEnd to end from the stream into ${label} (up to ${fmt(E2E_ROWS)} coord ops already in the stream; the built service; from first insert to last)`,
  );
  const redis = new Redis(redisUrl);
  for (const batch of BATCHES) {
    // Small batches are slow per row; fewer entries keep the run short without changing the rate.
    const total = Math.min(E2E_ROWS, batch * 500);
    const ns = `bench-${label.replace(/[^A-Za-z]/g, '').toLowerCase()}-${batch}-${process.pid}`;
    const ks = new Keyspace(ns);
    await fillStream(redis, ks.coordIngest, total);
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-archivist-e2e-'));
    const env = {
      REDIS_URL: redisUrl,
      COORDBUS_NAMESPACE: ns,
      ARCHIVIST_DATA_DIR: dataDir,
      ARCHIVIST_BATCH_SIZE: String(batch),
      ...extraEnv(batch),
    };
    const { child, url } = await startArchivist(env);
    // Progress is read from Redis (the group's read and pending counts: an entry leaves the
    // pending list only after its batch committed), not from /metrics: scraping the archivist
    // every 100 ms cost it ~6 % of its CPU in the profile, a load no production scraper adds.
    let first = 0;
    let t0 = now();
    let cpu0 = 0;
    let split0;
    for (;;) {
      const { read, pending } = await groupProgress(redis, ks.coordIngest);
      const n = read - pending;
      if (read > 0 && !first) {
        first = n;
        t0 = now();
        cpu0 = procCpuMs(child.pid);
        split0 = cpuSplit(child.pid, redisPid);
      }
      if (n >= total) break;
      await sleep(20);
    }
    const split1 = cpuSplit(child.pid, redisPid);
    const inserted = await insertedSoFar(url);
    if (inserted !== total) throw new Error(`archivist inserted ${inserted} of ${total} entries`);
    report(
      `e2e-${label}`,
      `archivist (read + insert + ack)`,
      batch,
      total - first,
      now() - t0,
      baselineByBatch[batch],
      procCpuMs(child.pid) - cpu0,
    );
    console.log(`    ${cpuSplitLine(child.pid, split0, split1, total - first)}`);
    await stopProcess(child);
    fs.rmSync(dataDir, { recursive: true, force: true });
    await deleteKeys(redis, `${ns}:*`);
  }
  redis.disconnect();
}

async function e2eBaselines(redisUrl) {
  console.log(`\nEnd to end baselines (${fmt(E2E_ROWS)} entries, no archivist)`);
  const redis = new Redis(redisUrl);
  const byBatch = {};
  for (const batch of BATCHES) {
    const stream = `bench-raw-${batch}-${process.pid}:coord:{ingest}`;
    await fillStream(redis, stream, E2E_ROWS);
    await redis.xgroup('CREATE', stream, 'raw', '0');
    const t = now();
    let n = 0;
    for (;;) {
      const res = await redis.xreadgroup('GROUP', 'raw', 'c', 'COUNT', batch, 'STREAMS', stream, '>');
      const entries = res ? res[0][1] : [];
      if (!entries.length) break;
      await redis.xack(stream, 'raw', ...entries.map(([id]) => id));
      n += entries.length;
    }
    byBatch[batch] = report('e2e-baseline', 'raw XREADGROUP + XACK loop [baseline]', batch, n, now() - t);
    await redis.del(stream);
  }
  const fields = codec.encode(Schemas.coordOp, envelope(1));
  const t = now();
  const N = 5000;
  for (let i = 0; i < N; i++) codec.decode(Schemas.coordOp, fields);
  report('e2e-baseline', 'EnvelopeCodec.decode (compiled) alone', 1, N, now() - t);
  redis.disconnect();
  return byBatch;
}

(async () => {
  console.log(
    `bench/archivist on ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}, node ${process.version}`,
  );
  const rows = makeRows(ROWS);
  if (WITH_STORE) await benchSqliteStore(rows);
  if (WITH_STORE && WITH_PG) await benchPgStore(rows);
  if (WITH_E2E) {
    const redis = await startRedis();
    try {
      const baselines = await e2eBaselines(redis.url);
      await benchE2e(redis.url, 'SQLite', () => ({}), baselines, redis.pid);
      if (WITH_PG) {
        const schema = `bench_archivist_e2e_${process.pid}`;
        const admin = new Pool({ ...pgConnectionConfig(PG_URL), max: 1 });
        try {
          await benchE2e(
            redis.url,
            'PostgreSQL',
            (batch) => ({ DATABASE_URL: PG_URL, ARCHIVIST_PG_SCHEMA: `${schema}_${batch}` }),
            baselines,
            redis.pid,
          );
        } finally {
          for (const b of BATCHES)
            await admin.query(`DROP SCHEMA IF EXISTS ${schema}_${b} CASCADE`).catch(() => undefined);
          await admin.end();
        }
      }
    } finally {
      await redis.stop();
    }
  }
  console.log(
    `\nload average at the end ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  // Issue #15: end to end (SQLite, batch 1 000) against what the store alone does at that batch.
  const e2e = results.find((r) => r.section === 'e2e-SQLite' && r.batch === 1000);
  const store = results.find(
    (r) => r.section === 'sqlite-store' && r.name === 'SqliteArchiveStore.insertBatch' && r.batch === 1000,
  );
  if (e2e && store) {
    reportTarget({
      bench: 'archivist',
      name: 'archivist end to end, SQLite, batch 1000',
      value: e2e.rate,
      unit: 'rows/s',
      baseline: { name: 'SqliteArchiveStore alone', value: store.rate },
      target: '>= 0.5',
    });
    // The same per CPU-second of every thread doing it (context, not the target): the
    // writer thread and two batches in flight buy the rate above with CPU, and this shows the price.
    reportTarget({
      bench: 'archivist',
      name: 'archivist end to end, SQLite, batch 1000, per CPU-second',
      value: e2e.cpuRate,
      unit: 'rows/CPU-s',
      baseline: { name: 'SqliteArchiveStore alone', value: store.cpuRate },
    });
  }
  if (hasFlag('json')) console.log(JSON.stringify(results));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
