'use strict';
/**
 * Codec benchmark (issue #15): decode + validate of one stream entry per schema with the compiled
 * validators (EnvelopeCodec.decode), beside the same entries through class-validator
 * (JSON.parse + plainToInstance + validateSync, what the codec did before: the oracle kept in
 * libs/envelope/src/reference.ts), in the same process and run. No Redis. The entries are what
 * producers write (EnvelopeCodec.encode), so the codec reads coord-op text without JSON.parse.
 *
 *   npm run build && node bench/codec/run.js [--ms 600] [--rounds 3]
 *
 * Each side warms up, then runs for --ms milliseconds of CPU time per round, alternating, --rounds times; the
 * best round of each counts (the least disturbed by other load on a shared machine). Target (issue #15): the
 * coord-op decode >= 20x class-validator.
 */
require('reflect-metadata');
const os = require('node:os');
const { arg, dist, fmt, report, requireBuilt } = require('../lib');

requireBuilt('libs/envelope/src/index.js');
const env = require(dist('libs/envelope/src/index.js'));

const MS = arg('ms', 600);
const ROUNDS = arg('rounds', 3);
const TS = '2026-04-07T12:34:56.789Z';
const ULID = '01JABCDEF0TXSD0123456789AB';

/** One realistic value per schema (the coord-op one as the coord CLI writes it). */
const VALUES = {
  coordOp: {
    v: 0,
    ts: TS,
    service: 'coord',
    host: 'devbox-1',
    level: 'info',
    pid: 4242,
    target: 'coord::lock',
    msg: 'coord.lock done',
    fields: {
      op: 'lock',
      session: 'worker-1',
      resource: 'repo:src/app.ts',
      peer: '',
      duration_ms: 3.2,
      phase: 'post',
      exit_code: 0,
    },
  },
  coordEvent: {
    tx_id: ULID,
    tx_kind: 'lock.acquire',
    ts: TS,
    ingress_ts: TS,
    source: 'coord',
    session_id: 'worker-1',
    resource: 'repo:src/app.ts',
    payload: { resource: 'repo:src/app.ts', owner_session: 'worker-1', expires_at: TS },
  },
  jobLog: { seq: 3, ts: TS, kind: 'stdout', line: 'compiling 12 files' },
  jobEvent: {
    job_id: 'j1',
    invocation_id: 'i1',
    hook: 'post-edit',
    name: 'lint',
    worktree: '/work/wt/a',
    tags: ['lint'],
    status: 'succeeded',
    exit_code: 0,
    signal: null,
    host: 'devbox-1',
    ts: TS,
  },
  telemetry: {
    source: 'headroom',
    event: 'stall',
    status: 'stall',
    duration_ms: 812,
    detail: { stage: 'compose', episodes: 3 },
    ts: TS,
  },
  observation: {
    ts: TS,
    session_id: 'worker-1',
    kind: 'lock.acquire',
    resource: 'repo:src/app.ts',
    summary: 'worker-1 took repo:src/app.ts',
    tx_id: ULID,
    source: 'coord',
  },
  deadLetter: {
    fields: { type: 'coord-op', v: '0', data: '{}' },
    source_stream: 'coord:ingest',
    entry_id: '1-0',
    reason: 'invalid coord-op',
    error_code: 'Invalid',
    delivery_count: 1,
    group: 'archivist',
    consumer: 'a-1',
    ts: TS,
  },
};

/**
 * Calls `fn` in a loop for `ms` milliseconds of this process's CPU time; returns calls per
 * CPU-second. CPU time, not wall time: on a shared machine the wall clock also counts the time
 * other processes held the core, which would favour whichever side was luckier.
 */
function rateOf(fn, ms) {
  for (let i = 0; i < 200; i++) fn();
  let n = 0;
  const c0 = process.cpuUsage();
  let used = 0;
  while (used < ms * 1000) {
    for (let i = 0; i < 100; i++) fn();
    n += 100;
    const c = process.cpuUsage(c0);
    used = c.user + c.system;
  }
  return (n * 1e6) / used;
}

function main() {
  const codec = new env.EnvelopeCodec();
  console.log(
    `codec benchmark: node ${process.version}, ${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(2)}; ` +
      `${ROUNDS} alternating rounds of ${MS} ms CPU per side, best round counts (rates per CPU-second)\n`,
  );
  console.log(
    `${'schema'.padEnd(12)}${'compiled /s'.padStart(14)}${'class-validator /s'.padStart(20)}  ratio`,
  );
  const out = {};
  for (const [key, value] of Object.entries(VALUES)) {
    const schema = env.Schemas[key];
    const fields = codec.encode(schema, value);
    const compiled = () => codec.decode(schema, fields);
    const reference = () => {
      const r = env.validateWithClassValidator(schema, JSON.parse(fields[5]));
      if (r.paths.length) throw new Error(`bench value for ${key} is invalid: ${r.paths.join('; ')}`);
    };
    // An unmeasured round each first: both sides reach their optimised code before the clock runs.
    rateOf(compiled, MS / 2);
    rateOf(reference, MS / 2);
    let best = { compiled: 0, reference: 0 };
    for (let r = 0; r < ROUNDS; r++) {
      best = {
        compiled: Math.max(best.compiled, rateOf(compiled, MS)),
        reference: Math.max(best.reference, rateOf(reference, MS)),
      };
    }
    out[key] = best;
    console.log(
      `${key.padEnd(12)}${fmt(Math.round(best.compiled)).padStart(14)}${fmt(Math.round(best.reference)).padStart(20)}  ` +
        `${(best.compiled / best.reference).toFixed(1)}x`,
    );
  }
  // Where a decode's time goes. An entry as producers write it (JSON.stringify of a DTO) is read
  // from its text straight into the instance (compile.ts, generateTextReader); the same entry with
  // one space after its `{` is valid JSON the reader does not take, so it measures the JSON.parse
  // path every other text takes. Then JSON.parse alone, and the validation step alone on an
  // already parsed value (validate does not modify its input).
  const op = env.Schemas.coordOp;
  const json = codec.encode(op, VALUES.coordOp)[5];
  const parsed = JSON.parse(json);
  const spaced = ['type', op.name, 'v', String(op.major), 'data', `{ ${json.slice(1)}`];
  const viaParse = rateOf(() => codec.decode(op, spaced), MS);
  const parse = rateOf(() => JSON.parse(json), MS);
  const validateOnly = rateOf(() => codec.validate(op, parsed), MS);
  const validateRef = rateOf(() => env.validateWithClassValidator(op, parsed), MS);
  const us = (rate) => (1e6 / rate).toFixed(2);
  console.log(
    `\ncoordOp per call (CPU): decode ${us(out.coordOp.compiled)} us from the text; ${us(viaParse)} us when the ` +
      `text needs JSON.parse (one space added: ${(viaParse / out.coordOp.reference).toFixed(1)}x class-validator), ` +
      `of which JSON.parse alone ${us(parse)} us; validation step alone ${us(validateOnly)} us compiled vs ` +
      `${us(validateRef)} us class-validator (${(validateOnly / validateRef).toFixed(0)}x)`,
  );
  console.log('');
  report({
    bench: 'codec',
    name: 'codec decode, coord-op entry',
    value: out.coordOp.compiled,
    unit: 'decodes/CPU-s',
    baseline: { name: 'class-validator', value: out.coordOp.reference },
    target: '>= 20',
    note: `decode ${us(out.coordOp.compiled)} us read from the text (${us(viaParse)} us through JSON.parse, which alone is ${us(parse)} us); validation step alone ${(validateOnly / validateRef).toFixed(0)}x class-validator`,
  });
}

main();
