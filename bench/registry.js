'use strict';
// Every benchmark `npm run bench` runs, in order. A new benchmark plugs in with one entry here; its
// script states each target through `report()` of bench/lib.js (figure, same-run baseline, target),
// which prints met / NOT met and hands the figure to the runner.
//
// `args`/`env` are the small default sizes of the one-command run (the whole sequence fits in
// about 10 minutes on 2 cores); run a script by hand, without them, for its full-size figures.
// `timeoutS` bounds each one: a script still running then is killed and recorded as timed out.

/**
 * @typedef {object} BenchEntry
 * @property {string} name      short id, used by --only/--skip and in bench/results/*.json
 * @property {string} script    path under bench/
 * @property {string[]} [args]  the small default sizes
 * @property {Record<string, string>} [env]
 * @property {number} timeoutS  wall-clock bound of the whole script
 * @property {string} targets   what it measures against what (shown by --list)
 */

/** @type {BenchEntry[]} */
const BENCHMARKS = [
  {
    name: 'codec',
    script: 'codec/run.js',
    args: ['--ms', '400', '--rounds', '3'],
    timeoutS: 120,
    targets: 'coord-op decode (compiled) >= 20x class-validator',
  },
  {
    name: 'transport',
    script: 'transport/run.js',
    env: { BENCH_N: '20000', BENCH_ONLY: 'nest-b100,plain-b100,nest-b100-schema' },
    timeoutS: 240,
    targets: 'one consumer with schema validation >= 0.8x without; one Nest consumer >= 50 000 msgs/s',
  },
  {
    name: 'fanout',
    script: 'fanout/run.js',
    args: ['--count', '10000', '--seconds', '3'],
    timeoutS: 180,
    targets: 'fanout-publisher x1 >= 0.6x raw XADD+PUBLISH pipelined',
  },
  {
    name: 'sentinel',
    script: 'sentinel/run.js',
    args: ['--events', '10000', '--sessions', '20', '--ttl', '2'],
    timeoutS: 240,
    targets: 'sentinel x1 >= 0.4x bare XREADGROUP+XACK loop',
  },
  {
    name: 'archivist',
    script: 'archivist/run.js',
    args: ['--rows', '100000', '--e2e-rows', '100000', '--batches', '1000', '--no-pg'],
    timeoutS: 300,
    targets: 'end to end (SQLite, batch 1000) >= 0.5x the store alone',
  },
  {
    name: 'hooks',
    script: 'hooks/run.js',
    args: ['--calls', '100', '--runs', '10'],
    timeoutS: 240,
    targets:
      'PostToolUse hook (throttled) above the same-run spawn floor: CPU <= 1.7x, p50 wall <= 2x that floor; absolute (issue #14 §5) CPU <= 3 ms, p50 wall <= 5 ms; coord heartbeat p50 wall <= 1.5x node -e 0',
  },
  {
    name: 'jobs',
    script: 'jobs/run.js',
    args: ['1000', '100', '5'],
    timeoutS: 300,
    targets:
      'jobs/s >= 0.9x a plain BullMQ worker spawning the same command at the same concurrency; idle submit -> process spawned p99 <= 20 ms',
  },
  {
    name: 'tailer',
    script: 'tailer/run.js',
    args: ['--lines', '100000', '--latency-lines', '300', '--idle-s', '10'],
    timeoutS: 240,
    targets: '>= 100 000 lines per CPU-second; append -> stream p99 <= 10 ms (beside tail -F | grep)',
  },
  {
    name: 'cluster',
    script: 'cluster/run.js',
    args: ['--coord', '20', '--ops', '1000', '--entries', '5000'],
    timeoutS: 300,
    targets: 'no target: cluster mode beside a single node, for the record',
  },
  {
    name: 'console',
    script: 'console/run.js',
    args: ['--sessions', '1000', '--events', '100000', '--loads', '5', '--window', '8'],
    timeoutS: 360,
    targets:
      'console at 1 000 live sessions + 100 000 archived events: initial page p50 <= 1 000 ms; live feed CPU per tick (10 changing) <= 2x a 10-session fleet; all 1 000 changing <= 25 % core; <= 100 session rows in the DOM',
  },
  {
    name: 'fleet',
    script: 'fleet/run.js',
    args: [],
    timeoutS: 420,
    targets: '1 000 sessions: coord op p99 <= 20 ms, envelope p99 <= 100 ms, no loss, services <= 0.5 core',
  },
];

module.exports = { BENCHMARKS };
