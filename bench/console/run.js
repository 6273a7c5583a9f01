#!/usr/bin/env node
'use strict';
/* global fetch, document, window, performance, MutationObserver */
// bench/console: the fleet console at fleet size, in a real browser. Issue 16: "It must stay fast
// with 1 000 live sessions and 100 000 archived events: initial page under 1 s, server work per
// update bounded (no full scans per tick), the browser never holding unbounded lists".
//
//   npm run build && node bench/console/run.js [--sessions 1000] [--events 100000] [--loads 7]
//                                              [--window 15] [--base-sessions 10]
//
// Two BUILT telemetry-archivists (console included) against one private redis-server, side by side
// in the same run:
//   big:   --sessions live sessions registered through CoordStore (the coord Lua: real state), each
//          with a lock (a third with two), an inbox message, an activity entry, and orders for a
//          third of them; an SQLite archive seeded with --events rows (real coord events of template
//          sessions, cloned for 5 000 past sessions, plus coord op envelopes) through the archive
//          store directly (seeding, not the measured path);
//   small: --base-sessions live sessions, the same per-session state, an empty archive.
// Measured (Chromium via playwright-core, /usr/bin/chromium or CHROMIUM_PATH):
//   - initial page: navigation -> the sessions view showing its first page of rows (a
//     MutationObserver in the page stamps performance.now(), whose origin is the navigation),
//     p50 over --loads loads, each in a fresh browser context; beside the small fleet's page;
//   - the snapshot API alone (GET /v1/console/snapshot from Node, p50) and its JSON size;
//   - the browser's session rows and whole DOM once the feed is live (bounded: the view pages);
//   - archivist CPU (/proc) per live-feed tick, one browser page connected to each: idle, then with
//     the same 10 sessions changing on both (heartbeat + activity each second: equal work, so a
//     per-tick cost growing with the fleet or the archive shows as a ratio), then with every
//     session of the big fleet changing.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Redis = require('ioredis').default;
const {
  arg,
  dist,
  fmt,
  procCpuMs,
  quantile,
  report,
  requireBuilt,
  sleep,
  startRedis,
  startService,
  stopProcess,
  waitFor,
} = require('../lib');

requireBuilt('apps/telemetry-archivist/main.js', 'console/index.html', 'libs/coord/src/index.js');
const SESSIONS = arg('sessions', 1000);
const EVENTS = arg('events', 100_000);
const LOADS = arg('loads', 7);
const WINDOW_S = arg('window', 15);
const BASE_SESSIONS = arg('base-sessions', 10);
const POLL_MS = 250;
/** Rows the sessions view shows per page (console/app.js PAGE). */
const PAGE = 100;
const TARGET_PAGE_MS = 1000;
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const { Keyspace, EnvelopeCodec, Schemas } = require(dist('libs/envelope/src/index.js'));
const { CoordStore } = require(dist('libs/coord/src/index.js'));
const { SqliteArchiveStore } = require(dist('apps/telemetry-archivist/src/store/sqlite-archive-store.js'));
const { archivedStreamRefs, contentFromFields, toArchiveRow } = require(
  dist('apps/telemetry-archivist/src/ingest/row-mapper.js'),
);

const codec = new EnvelopeCodec();
const load1 = () => os.loadavg()[0].toFixed(1);
const log = (...a) => console.log(...a);
const r1 = (x) => Math.round(x * 10) / 10;

/** Runs `fn` over `items` with at most `width` in flight. */
async function inParallel(items, width, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i], i);
      }
    }),
  );
}

/** Registers `n` live sessions with real coord state: locks, an inbox message, activity, orders. */
async function seedLive(redis, ks, prefix, n) {
  const store = new CoordStore(redis, { keyspace: ks });
  const ids = Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(4, '0')}`);
  await inParallel(ids, 32, async (id, i) => {
    await store.register({
      sessionId: id,
      host: `host-${i % 8}`,
      pid: 1000 + i,
      role: i % 5 ? 'worker' : 'reviewer',
      task: `task ${i}: refactor module ${i % 40}`,
    });
    await store.lock(id, `src/${prefix}/module-${i}.ts`, { reason: 'editing' });
    if (i % 3 === 0) await store.lock(id, `docs/${prefix}/page-${i}.md`, { reason: 'docs' });
  });
  await inParallel(ids, 32, async (id, i) => {
    await store.send(ids[(i + 1) % n], id, 'please review', { subject: `review ${i}` });
    if (i % 3 === 0) await store.dispatch(ids[(i + 7) % n], id, `TOD-${i}`);
  });
  await activity(redis, ks, ids);
  return ids;
}

/** One agent-activity entry per session (a PostToolUse hook), as the hooks write it. */
function activity(redis, ks, ids) {
  const multi = redis.multi();
  const ts = new Date().toISOString();
  for (const [i, id] of ids.entries()) {
    const d = JSON.stringify({
      session_id: id,
      event: 'PostToolUse',
      tool: 'Edit',
      path: `src/f${i}.ts`,
      ts,
    });
    multi
      .xadd(ks.activityStream, 'MAXLEN', '~', 100000, '*', 'type', 'agent-activity', 'v', '1', 'data', d)
      .hset(ks.activityLast, id, d);
  }
  return multi.exec();
}

/**
 * `events` archive rows: the real coord events of a few template sessions (register, heartbeat with
 * a phase, lock, unlock, send, dispatch, dereg), cloned for past sessions with fresh tx ids and ids
 * spread over the last week, plus coord op envelopes (about 40 %), written with the store itself.
 */
async function seedArchive(redis, ks, file, events) {
  const tks = new Keyspace(`${ks.namespace}-template`);
  const store = new CoordStore(redis, { keyspace: tks });
  const tpl = ['tpl-a', 'tpl-b'];
  for (const s of tpl)
    await store.register({ sessionId: s, host: 'host-t', pid: 7, role: 'worker', task: `task of ${s}` });
  await store.heartbeat('tpl-a', { phase: 'edit' });
  await store.lock('tpl-a', 'src/tpl-a/file.ts', { reason: 'editing' });
  await store.send('tpl-a', 'tpl-b', 'body', { subject: 'subject from tpl-a' });
  await store.dispatch('tpl-a', 'tpl-b', 'TOD-1');
  await store.unlock('tpl-a', 'src/tpl-a/file.ts');
  for (const s of tpl) await store.dereg(s, s === 'tpl-a' ? 'explicit' : 'ttl-expired');
  const templates = (await redis.xrange(tks.coordEvents, '-', '+')).map(([, f]) => {
    const rec = {};
    for (let i = 0; i + 1 < f.length; i += 2) rec[f[i]] = f[i + 1];
    return rec;
  });
  const refs = archivedStreamRefs(ks);
  const ceRef = refs.find((r) => r.key === 'coordEvents');
  const ciRef = refs.find((r) => r.key === 'coordIngest');
  const archive = new SqliteArchiveStore(file);
  await archive.open();
  const t0 = Date.now() - 7 * 86_400_000;
  const span = 7 * 86_400_000 - 3_600_000;
  let made = 0;
  let past = 0;
  let batch = [];
  const flush = async () => {
    await archive.insertBatch(batch);
    batch = [];
  };
  while (made < events) {
    // One past pair of sessions: its coord events, then as many op envelopes (40 % of rows).
    const names = [`past-${past}-a`, `past-${past}-b`];
    past++;
    for (const rec of templates) {
      if (made >= events) break;
      const ms = t0 + Math.floor((made / events) * span);
      const id = `${ms}-${made % 1000}`;
      const data = JSON.parse(rec.data.replaceAll('tpl-a', names[0]).replaceAll('tpl-b', names[1]));
      data.tx_id = `01BENCH${String(made).padStart(19, '0')}`;
      data.ts = new Date(ms).toISOString();
      batch.push(toArchiveRow(ceRef, id, contentFromFields({ ...rec, data: JSON.stringify(data) })));
      made++;
      if (made < events && made % 5 < 2) {
        const fields = codec.encode(
          Schemas.coordOp,
          {
            v: 0,
            ts: new Date(ms).toISOString(),
            service: 'coord',
            host: 'host-t',
            level: 'info',
            pid: 7,
            target: 'coord',
            msg: 'coord.lock end',
            fields: {
              op: 'lock',
              session: names[0],
              resource: `src/${names[0]}.ts`,
              peer: '',
              duration_ms: 3,
              phase: 'post',
              exit_code: 0,
            },
          },
          { validate: false },
        );
        batch.push(
          toArchiveRow(
            ciRef,
            `${ms}-${made % 1000}`,
            contentFromFields({ type: fields[1], v: fields[3], data: fields[5] }),
          ),
        );
        made++;
      }
      if (batch.length >= 5000) await flush();
    }
  }
  if (batch.length) await flush();
  const stats = await archive.stats();
  await archive.close();
  return { rows: Object.values(stats.rowsByStream).reduce((a, b) => a + b, 0), pastSessions: past * 2 };
}

async function startArchivist(redisUrl, namespace, dataDir) {
  const { child, match } = await startService('telemetry-archivist', {
    env: {
      REDIS_URL: redisUrl,
      COORDBUS_NAMESPACE: namespace,
      ARCHIVIST_DATA_DIR: dataDir,
      CONSOLE_POLL_MS: String(POLL_MS),
      LOG_LEVEL: 'info',
    },
    ready: /"http":"([^"]+)"[^\n]*started/,
    stderr: 'capture',
    timeoutMs: 120_000,
  });
  return { child, url: match[1].replace('[::1]', '127.0.0.1') };
}

/** Stamps performance.now() (origin: the navigation) once the sessions view shows `want` rows. */
function stampRows(want) {
  const rows = () => document.querySelectorAll('[data-testid^="session-row-"]').length;
  const check = () => {
    if (window.__rendered === undefined && rows() >= want) window.__rendered = performance.now();
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true });
}

/**
 * One page load in a fresh context: ms from navigation to `want` session rows on screen, and the
 * renderer's main-thread task time by then.
 */
async function pageLoad(browser, url, want) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable');
  const profile = process.env.BENCH_CONSOLE_PAGE_PROFILE;
  if (profile) await cdp.send('Profiler.enable').then(() => cdp.send('Profiler.start'));
  await page.addInitScript(stampRows, want);
  await page.goto(`${url}/#/sessions`);
  await page.waitForFunction(() => window.__rendered !== undefined, null, { timeout: 60_000, polling: 50 });
  const ms = await page.evaluate(() => window.__rendered);
  // The renderer's main-thread busy time so far: what the page cost the browser, whatever the load.
  const { metrics } = await cdp.send('Performance.getMetrics');
  const taskMs = 1000 * (metrics.find((m) => m.name === 'TaskDuration')?.value ?? NaN);
  // BENCH_CONSOLE_PAGE_PROFILE=<file>: the page's V8 CPU profile (the last load of each fleet).
  if (profile)
    fs.writeFileSync(
      `${profile}-${want}.cpuprofile`,
      JSON.stringify((await cdp.send('Profiler.stop')).profile),
    );
  await context.close();
  return { ms, taskMs };
}

async function snapshotGet(url) {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/console/snapshot`);
  const body = await res.text();
  if (!res.ok) throw new Error(`snapshot: ${res.status} ${body.slice(0, 200)}`);
  return { ms: performance.now() - t0, bytes: Buffer.byteLength(body), json: JSON.parse(body) };
}

/** A page kept open on the sessions view (a live client of the feed), for the tick windows. */
async function livePage(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${url}/#/sessions`);
  await page.locator('[data-testid="connection"]', { hasText: 'live' }).waitFor({ timeout: 60_000 });
  return { context, page };
}

/** Session rows, all table rows and all elements of the page right now. */
const domCounts = (page) =>
  page.evaluate(() => ({
    sessionRows: document.querySelectorAll('[data-testid^="session-row-"]').length,
    tableRows: document.querySelectorAll('tr').length,
    elements: document.getElementsByTagName('*').length,
  }));

/**
 * Archivist CPU over `seconds` while `work` runs every second: ms of CPU per poll interval of
 * the live feed (the tick), for each process.
 */
async function cpuWindow(pids, seconds, work) {
  const c0 = pids.map((p) => procCpuMs(p));
  const t0 = Date.now();
  let stop = false;
  const driver = (async () => {
    while (!stop) {
      const s = Date.now();
      if (work) await work();
      await sleep(Math.max(0, 1000 - (Date.now() - s)));
    }
  })();
  await sleep(seconds * 1000);
  stop = true;
  await driver;
  const elapsed = Date.now() - t0;
  const ticks = elapsed / POLL_MS;
  return pids.map((p, i) => ({
    perTickMs: (procCpuMs(p) - c0[i]) / ticks,
    cores: (procCpuMs(p) - c0[i]) / elapsed,
  }));
}

async function main() {
  const { chromium } = require('playwright-core');
  const redisSrv = await startRedis({ useEnv: false });
  const redis = new Redis(redisSrv.url);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-console-'));
  const children = [];
  let browser;
  const cleanup = () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    redisSrv.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  try {
    const big = new Keyspace('bench-console-big');
    const small = new Keyspace('bench-console-small');
    log(
      `bench/console: ${fmt(SESSIONS)} live sessions + ${fmt(EVENTS)} archived events vs ${BASE_SESSIONS} sessions + empty archive (load ${load1()})`,
    );

    let t = Date.now();
    const seeded = await seedArchive(redis, big, path.join(tmp, 'big', 'archive.sqlite'), EVENTS);
    log(
      `  archive seeded: ${fmt(seeded.rows)} rows, ${fmt(seeded.pastSessions)} past sessions in ${Date.now() - t} ms`,
    );
    t = Date.now();
    const [bigIds, smallIds] = [
      await seedLive(redis, big, 'live', SESSIONS),
      await seedLive(redis, small, 'base', BASE_SESSIONS),
    ];
    log(`  live state seeded: ${fmt(SESSIONS)} + ${BASE_SESSIONS} sessions in ${Date.now() - t} ms`);

    const A = await startArchivist(redisSrv.url, big.namespace, path.join(tmp, 'big'));
    const B = await startArchivist(redisSrv.url, small.namespace, path.join(tmp, 'small'));
    children.push(A.child, B.child);
    // The live sessions' coord events reach the archive too (the archivist consumes them).
    await waitFor(
      async () => (await snapshotGet(A.url)).json.sessions.length >= SESSIONS,
      'big snapshot',
      60_000,
      500,
    );

    // ---- snapshot API ----
    const snaps = { big: [], small: [], bigCpu: [], smallCpu: [] };
    let bigSnap;
    let smallSnap;
    for (let i = 0; i < LOADS; i++) {
      // The archivist's CPU for one snapshot (/proc): unlike the wall time it holds on a loaded machine.
      let c0 = procCpuMs(A.child.pid);
      bigSnap = await snapshotGet(A.url);
      snaps.bigCpu.push(procCpuMs(A.child.pid) - c0);
      c0 = procCpuMs(B.child.pid);
      smallSnap = await snapshotGet(B.url);
      snaps.smallCpu.push(procCpuMs(B.child.pid) - c0);
      snaps.big.push(bigSnap.ms);
      snaps.small.push(smallSnap.ms);
    }
    const snapP50 = { big: quantile(snaps.big, 0.5), small: quantile(snaps.small, 0.5) };
    const snapCpu = { big: quantile(snaps.bigCpu, 0.5), small: quantile(snaps.smallCpu, 0.5) };
    log(
      `  snapshot API p50: ${r1(snapP50.big)} ms (${fmt(bigSnap.bytes)} bytes, ${bigSnap.json.sessions.length} sessions, ${bigSnap.json.locks.length} locks, ${bigSnap.json.ended.length} ended) vs small ${r1(snapP50.small)} ms (${fmt(smallSnap.bytes)} bytes); archivist CPU per snapshot p50 ${r1(snapCpu.big)} ms vs ${r1(snapCpu.small)} ms (load ${load1()})`,
    );

    // ---- the page in Chromium ----
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking'],
    });
    const loads = { big: [], small: [] };
    for (let i = 0; i < LOADS; i++) {
      loads.big.push(await pageLoad(browser, A.url, Math.min(PAGE, SESSIONS)));
      loads.small.push(await pageLoad(browser, B.url, Math.min(PAGE, BASE_SESSIONS)));
    }
    const p50 = (xs, k) =>
      quantile(
        xs.map((x) => x[k]),
        0.5,
      );
    const pageP50 = { big: p50(loads.big, 'ms'), small: p50(loads.small, 'ms') };
    const taskP50 = { big: p50(loads.big, 'taskMs'), small: p50(loads.small, 'taskMs') };
    const all = (xs) => xs.map((x) => Math.round(x.ms)).join(' ');
    log(
      `  page (navigation -> sessions rows) p50: ${r1(pageP50.big)} ms [${all(loads.big)}] vs small ${r1(pageP50.small)} ms [${all(loads.small)}]; renderer main-thread busy p50 ${r1(taskP50.big)} ms vs ${r1(taskP50.small)} ms (load ${load1()})`,
    );

    // ---- live feed ticks ----
    const pa = await livePage(browser, A.url);
    const pb = await livePage(browser, B.url);
    const pids = [A.child.pid, B.child.pid];
    const bigStore = new CoordStore(redis, { keyspace: big });
    const smallStore = new CoordStore(redis, { keyspace: small });
    const few = (ids) => ids.slice(0, 10);
    const beat = (store, ks, ids) => () =>
      Promise.all([inParallel(ids, 32, (id) => store.heartbeat(id)), activity(redis, ks, ids)]);
    await sleep(2000); // the pages settle (first renders, the feed's first polls)
    const idle = await cpuWindow(pids, WINDOW_S, null);
    log(
      `  idle, one page each: big ${r1(idle[0].perTickMs)} ms CPU/tick vs small ${r1(idle[1].perTickMs)} (load ${load1()})`,
    );
    const bigFew = beat(bigStore, big, few(bigIds));
    const smallFew = beat(smallStore, small, few(smallIds));
    const ten = await cpuWindow(pids, WINDOW_S, () => Promise.all([bigFew(), smallFew()]));
    log(
      `  10 sessions changing on each: big ${r1(ten[0].perTickMs)} ms CPU/tick vs small ${r1(ten[1].perTickMs)} (load ${load1()})`,
    );
    const every = await cpuWindow(pids, WINDOW_S, beat(bigStore, big, bigIds));
    log(
      `  all ${fmt(SESSIONS)} sessions changing (heartbeat + activity each second): big ${r1(every[0].perTickMs)} ms CPU/tick = ${(every[0].cores * 100).toFixed(1)} % of a core (load ${load1()})`,
    );
    const dom = await domCounts(pa.page);
    const domSmall = await domCounts(pb.page);
    log(
      `  browser DOM after the feed ran: ${dom.sessionRows} session rows, ${dom.tableRows} table rows, ${fmt(dom.elements)} elements (small: ${domSmall.sessionRows} rows, ${fmt(domSmall.elements)} elements)`,
    );
    await pa.context.close();
    await pb.context.close();

    const at = `${fmt(SESSIONS)} sessions + ${fmt(seeded.rows)} archived`;
    report({
      bench: 'console',
      name: `initial page p50 (navigation -> sessions rows), ${at}`,
      value: r1(pageP50.big),
      unit: 'ms',
      target: `<= ${TARGET_PAGE_MS}`,
      note: `same run: ${BASE_SESSIONS} sessions + empty archive ${r1(pageP50.small)} ms; renderer busy ${r1(taskP50.big)} vs ${r1(taskP50.small)} ms; snapshot API alone p50 ${r1(snapP50.big)} ms (${fmt(bigSnap.bytes)} bytes, ${r1(snapCpu.big)} ms archivist CPU) vs ${r1(snapP50.small)} ms (${r1(snapCpu.small)} ms CPU)`,
    });
    report({
      bench: 'console',
      name: `live feed CPU per tick, 10 sessions changing, ${at}`,
      value: r1(ten[0].perTickMs),
      unit: 'ms',
      baseline: {
        name: `${BASE_SESSIONS} sessions + empty archive`,
        value: Math.max(0.1, r1(ten[1].perTickMs)),
      },
      target: '<= 2',
      note: `idle: ${r1(idle[0].perTickMs)} vs ${r1(idle[1].perTickMs)} ms/tick; all ${SESSIONS} changing: ${r1(every[0].perTickMs)} ms/tick`,
    });
    report({
      bench: 'console',
      name: `live feed CPU, all ${fmt(SESSIONS)} sessions changing every second`,
      value: r1(every[0].cores * 100),
      unit: '% core',
      target: '<= 25',
      note: `${r1(every[0].perTickMs)} ms CPU per ${POLL_MS} ms tick; idle ${r1(idle[0].perTickMs)} ms/tick`,
    });
    report({
      bench: 'console',
      name: `session rows in the browser, ${at}`,
      value: dom.sessionRows,
      unit: 'rows',
      target: `<= ${PAGE}`,
      note: `${dom.tableRows} table rows, ${dom.elements} elements; snapshot ${bigSnap.bytes} bytes`,
    });
  } finally {
    await browser?.close().catch(() => undefined);
    for (const c of children) await stopProcess(c, 'SIGTERM');
    redis.disconnect();
    cleanup();
  }
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}

module.exports = { seedArchive, seedLive };
