#!/usr/bin/env node
'use strict';
/* global performance */
/**
 * log-tailer benchmark (issue 5), against the BUILT service (`npm run build` first):
 *   1. throughput: lines/s through the headroom observer, and lines per CPU-second of the tailer
 *      process (one core: the pipeline is one thread), appending a corpus to the followed file;
 *   2. append -> stream latency p50/p99 (a breach line appended; seen by an XREAD BLOCK reader);
 *   3. idle CPU over 30 s (/proc/<pid>/stat utime+stime).
 * Same-run baseline: `tail -F file | grep STAGE_TIMINGS` (GNU tail, inotify) over the same file:
 * its throughput (tail+grep CPU and wall), latency to grep's output, and idle CPU.
 *
 *   node bench/tailer/run.js [--lines 400000] [--latency-lines 1000] [--idle-s 30]
 * Uses REDIS_URL if set, else starts a throwaway redis-server on a free port.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Redis = require('ioredis');
const {
  arg,
  deleteKeys,
  freePort,
  pct,
  procCpuSeconds,
  report,
  requireBuilt,
  sleep,
  startRedis,
  startService,
  stopProcess,
  waitFor,
} = require('../lib');

const LINES = arg('lines', 400_000);
const LATENCY_LINES = arg('latency-lines', 1000);
const LATENCY_GAP_MS = arg('latency-gap-ms', 5);
const IDLE_S = arg('idle-s', 30);
const pad = (n, w = 2) => String(n).padStart(w, '0');
function asctime(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())},${pad(d.getMilliseconds(), 3)}`;
}
function stageLine(d, seq, total) {
  return (
    `${asctime(d)} - headroom.proxy - INFO - [hr_${Math.floor(d.getTime() / 1000)}_${pad(seq % 1e6, 6)}] STAGE_TIMINGS ` +
    `{"event": "stage_timings", "path": "anthropic_messages", "request_id": "req-${seq}", "session_id": "sess-${seq % 7}", ` +
    `"stages": {"pre_upstream_wait": 0.002, "read_request_json": 0.76, "deep_copy": 0.05, "compression_first_stage": ${(total - 1.6).toFixed(2)}, ` +
    `"memory_context": null, "upstream_connect": null, "upstream_first_byte": null, "total_pre_upstream": ${total.toFixed(2)}}}\n`
  );
}
/** A realistic proxy log: 80% STAGE_TIMINGS (1 in 100 a breach), 20% other lines. */
function corpus(n) {
  const parts = [];
  let matches = 0;
  const t0 = Date.now();
  for (let i = 0; i < n; i++) {
    const d = new Date(t0 + i);
    if (i % 5 === 4) {
      parts.push(
        `${asctime(d)} - uvicorn.access - INFO - 127.0.0.1:53012 - "POST /v1/messages HTTP/1.1" 200 OK\n`,
      );
    } else {
      matches++;
      parts.push(stageLine(d, i, i % 100 === 0 ? 650 + (i % 7) : 20 + (i % 13)));
    }
  }
  return { buf: Buffer.from(parts.join('')), matches };
}

function childrenOf(pid) {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}
const readChars = (pid) => Number(/rchar: (\d+)/.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'))[1]);

async function main() {
  requireBuilt('apps/log-tailer/main.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tailer-bench-'));
  const children = [];
  let redisServer;
  const cleanup = () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    redisServer?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  try {
    redisServer = await startRedis();
    const redisUrl = redisServer.url;
    const redis = new Redis(redisUrl);
    const namespace = `bench-tailer-${Date.now()}`;
    const stream = `${namespace}:telemetry:{events}`;
    const cpKey = `${namespace}:telemetry:{events}:checkpoint:bench`;

    const logPath = path.join(dir, 'proxy.log');
    fs.writeFileSync(logPath, '');
    console.error(`generating ${LINES} lines...`);
    const { buf, matches } = corpus(LINES);

    // ---- the tailer ------------------------------------------------------------------------
    const httpPort = await freePort();
    const nodeArgs = (process.env.BENCH_TAILER_NODE_ARGS ?? '').split(' ').filter(Boolean); // e.g. --cpu-prof
    const { child: tailer } = await startService('log-tailer', {
      nodeArgs,
      args: [
        '--path',
        logPath,
        '--source',
        'bench',
        '--event',
        'bench.overhead',
        '--threshold-ms',
        '500',
        '--quiet-ms',
        '200',
      ],
      env: {
        REDIS_URL: redisUrl,
        COORDBUS_NAMESPACE: namespace,
        HTTP_PORT: String(httpPort),
        LOG_LEVEL: 'warn',
      },
      stdout: 'inherit',
      readyUrl: `http://127.0.0.1:${httpPort}/readyz`,
    });
    children.push(tailer);
    await sleep(500);

    console.error('throughput: tailer...');
    let c0 = procCpuSeconds([tailer.pid]);
    let t0 = performance.now();
    fs.appendFileSync(logPath, buf);
    const size1 = fs.statSync(logPath).size;
    await waitFor(
      async () => {
        const cp = await redis.hget(cpKey, logPath);
        return cp && JSON.parse(cp).offset === size1;
      },
      'the tailer to reach the end',
      300_000,
      5,
    );
    const tailerWall = (performance.now() - t0) / 1000;
    const tailerCpu = procCpuSeconds([tailer.pid]) - c0;
    const breaches = await redis.xlen(stream);

    // ---- baseline: tail -F | grep ----------------------------------------------------------
    console.error('throughput: tail -F | grep...');
    const base = spawn('sh', ['-c', `exec tail -n 0 -F ${logPath} | grep --line-buffered STAGE_TIMINGS`], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    children.push(base);
    // Both children must have exec'd (comm is still `sh` right after the fork).
    const comm = (p) => {
      try {
        return fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim();
      } catch {
        return '';
      }
    };
    const basePids = await waitFor(() => {
      const kids = childrenOf(base.pid);
      return kids.length === 2 && kids.map(comm).sort().join() === 'grep,tail' ? kids : null;
    }, 'tail and grep to start');
    const grepPid = basePids.find((p) => comm(p) === 'grep');
    let baseLines = 0;
    const baseSeen = new Map();
    let pending = '';
    base.stdout.on('data', (d) => {
      pending += d.toString();
      let i;
      while ((i = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, i);
        pending = pending.slice(i + 1);
        baseLines++;
        const m = /"request_id": "lat-(\d+)"/.exec(line);
        if (m) baseSeen.set(Number(m[1]), performance.now());
      }
    });
    await sleep(1000);
    const grepRead0 = readChars(grepPid);
    c0 = procCpuSeconds(basePids);
    t0 = performance.now();
    fs.appendFileSync(logPath, buf);
    const linesBefore = baseLines;
    await waitFor(
      () => baseLines - linesBefore >= matches && readChars(grepPid) - grepRead0 >= buf.length,
      'tail | grep to reach the end',
      300_000,
      5,
    );
    const baseWall = (performance.now() - t0) / 1000;
    const baseCpu = procCpuSeconds(basePids) - c0;
    // The tailer also read that second copy meanwhile; let it finish before measuring latency.
    const size2 = fs.statSync(logPath).size;
    await waitFor(
      async () => JSON.parse((await redis.hget(cpKey, logPath)) ?? '{}').offset === size2,
      'the tailer to catch up',
      300_000,
      20,
    );

    // ---- latency: both follow the same file at once -----------------------------------------
    console.error('latency...');
    const reader = new Redis(redisUrl);
    const seen = new Map();
    let lastId = '$';
    let reading = true;
    const readLoop = (async () => {
      while (reading) {
        const res = await reader.xread('BLOCK', 200, 'STREAMS', stream, lastId);
        if (!res) continue;
        const now = performance.now();
        for (const [, entries] of res) {
          for (const [id, fields] of entries) {
            lastId = id;
            const m = /"request_id":"lat-(\d+)"/.exec(fields[5]);
            if (m) seen.set(Number(m[1]), now);
          }
        }
      }
    })();
    await sleep(300);
    const appended = new Map();
    const fd = fs.openSync(logPath, 'a');
    for (let i = 0; i < LATENCY_LINES; i++) {
      const line = stageLine(new Date(), 0, 900).replace('"request_id": "req-0"', `"request_id": "lat-${i}"`);
      appended.set(i, performance.now());
      fs.writeSync(fd, line);
      await sleep(LATENCY_GAP_MS);
    }
    fs.closeSync(fd);
    await waitFor(
      () => seen.size >= LATENCY_LINES && baseSeen.size >= LATENCY_LINES,
      'every latency line',
      60_000,
    );
    reading = false;
    await readLoop;
    reader.disconnect();
    const lat = [...appended].map(([i, t]) => seen.get(i) - t);
    if (process.env.BENCH_DEBUG)
      console.error(
        lat
          .map((x, i) => `${i}:${x.toFixed(1)}`)
          .filter((_, i) => lat[i] > 5)
          .join(' '),
      );
    const baseLat = [...appended].map(([i, t]) => baseSeen.get(i) - t);

    // ---- idle CPU: both at once ---------------------------------------------------------------
    console.error(`idle CPU over ${IDLE_S} s...`);
    await sleep(1000); // let the episode close
    const ic0 = procCpuSeconds([tailer.pid]);
    const ib0 = procCpuSeconds(basePids);
    await sleep(IDLE_S * 1000);
    const idleTailer = (procCpuSeconds([tailer.pid]) - ic0) / IDLE_S;
    const idleBase = (procCpuSeconds(basePids) - ib0) / IDLE_S;

    await stopProcess(tailer);
    base.kill('SIGKILL');
    await deleteKeys(redis, `${namespace}:*`);
    redis.disconnect();

    const r = (x, d = 0) => Number(x.toFixed(d));
    const figures = (wall, cpu, latencies, idle) => ({
      lines_per_s_wall: r(LINES / wall),
      lines_per_cpu_s: r(LINES / cpu),
      cpu_s: r(cpu, 2),
      latency_ms: {
        p50: r(pct(latencies, 50), 2),
        p99: r(pct(latencies, 99), 2),
        max: r(Math.max(...latencies), 2),
        n: latencies.length,
      },
      idle_cpu_pct_of_core: r(idle * 100, 3),
    });
    const result = {
      machine: {
        cpus: os.cpus().length,
        model: os.cpus()[0].model,
        loadavg_at_end: os.loadavg().map((x) => r(x, 2)),
        node: process.version,
      },
      corpus: { lines: LINES, bytes: buf.length, stage_timings_lines: matches, breach_events: breaches },
      tailer: figures(tailerWall, tailerCpu, lat, idleTailer),
      baseline_tail_F_grep: figures(baseWall, baseCpu, baseLat, idleBase),
    };
    console.log(JSON.stringify(result, null, 2));
    console.log(
      [
        '',
        '| log-tailer bench | tailer (headroom observer -> Redis) | baseline `tail -F | grep STAGE_TIMINGS` |',
        '|---|---|---|',
        `| lines/s (wall) | ${result.tailer.lines_per_s_wall} | ${result.baseline_tail_F_grep.lines_per_s_wall} |`,
        `| lines per CPU-second (one core) | ${result.tailer.lines_per_cpu_s} | ${result.baseline_tail_F_grep.lines_per_cpu_s} |`,
        `| append -> visible p50 / p99 (ms) | ${result.tailer.latency_ms.p50} / ${result.tailer.latency_ms.p99} | ${result.baseline_tail_F_grep.latency_ms.p50} / ${result.baseline_tail_F_grep.latency_ms.p99} |`,
        `| idle CPU over ${IDLE_S} s (% of a core) | ${result.tailer.idle_cpu_pct_of_core} | ${result.baseline_tail_F_grep.idle_cpu_pct_of_core} |`,
      ].join('\n'),
    );
    const t = result.tailer;
    const b = result.baseline_tail_F_grep;
    report({
      bench: 'tailer',
      name: 'log-tailer lines per CPU-second',
      value: t.lines_per_cpu_s,
      unit: 'lines/CPU-s',
      target: '>= 100000',
      note: `same-run tail -F | grep: ${b.lines_per_cpu_s} lines/CPU-s`,
    });
    report({
      bench: 'tailer',
      name: 'append -> stream p99',
      value: t.latency_ms.p99,
      unit: 'ms',
      target: '<= 10',
    });
  } finally {
    cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
