#!/usr/bin/env node
'use strict';
// bench/hooks: what the PostToolUse hook costs per tool call, beside the seed's design (a bash
// wrapper that runs coord and calls redis-cli twice in the background per op), measured in the
// same run; and `coord heartbeat` wall time beside `node -e 0`.
//
//   npm run build && node bench/hooks/run.js [--calls 300] [--runs 25]
//
// Needs redis-server/redis-cli on PATH (starts its own Redis on a free port unless REDIS_URL).
// Wall: per call, median/p90 of spawnSync around the hook (includes Node's own fork+exec of the
// hook, shown as the `/bin/true` row). CPU: user+sys of the waited process tree per call, from
// /proc/self/stat cutime+cstime over all calls (10 ms ticks / many calls). Work a hook leaves in
// the background (orphans) is not in that column; it is listed separately below the table.
const { spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Redis = require('ioredis').default;
const { arg, deleteKeys, quantile, report, root, startRedis } = require('../lib');

const CALLS = arg('calls', 300);
const RUNS = arg('runs', 25);

/**
 * Runs `cmd args` `n` times from a bash loop (a cheap fork, unlike Node's spawn of a big process),
 * stdin from a file, output discarded; bash times each call with EPOCHREALTIME and reports the
 * children's CPU with `times`. Returns wall p50/p90 per call and CPU per call (waited tree).
 */
function measure(
  cmd,
  args,
  { n = CALLS, input = '', env = {}, gapMs = 0, sessionPerCall = false, cwd = root } = {},
) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-m-'));
  const inFile = path.join(dir, 'in');
  fs.writeFileSync(inFile, input);
  const q = (x) => `'${String(x).replace(/'/g, `'\\''`)}'`;
  const call = [cmd, ...args].map(q).join(' ');
  // The gap waits on a FIFO with the \`read -t\` builtin: a \`sleep\` process would count as CPU.
  const fifo = path.join(dir, 'gap');
  if (gapMs) execFileSync('mkfifo', [fifo]);
  const script = `
${gapMs ? `exec 9<> ${q(fifo)}` : ''}
for ((i = 0; i < ${n}; i++)); do
  ${sessionPerCall ? 'export COORD_SESSION_ID=fire-$i-$$' : ''}
  s=$EPOCHREALTIME; ${call} < ${q(inFile)} >/dev/null 2>&1; e=$EPOCHREALTIME
  echo "$s $e"
  ${gapMs ? `read -r -t ${gapMs / 1000} -u 9` : ''}
done
times
`;
  const out = spawnSync('bash', ['-c', script], {
    env: { ...process.env, ...env },
    cwd,
    maxBuffer: 64 << 20,
  }).stdout.toString();
  fs.rmSync(dir, { recursive: true, force: true });
  const lines = out.trim().split('\n');
  const walls = lines
    .filter((l) => /^\d+\.\d+ \d+\.\d+$/.test(l))
    .map((l) => {
      const [a, b] = l.split(' ').map(Number);
      return (b - a) * 1000;
    });
  // `times` prints the shell's then the children's "user sys".
  const child = lines[lines.length - 1].match(/(\d+)m([\d.]+)s/g).map((t) => {
    const [, m, sec] = t.match(/(\d+)m([\d.]+)s/);
    return Number(m) * 60_000 + Number(sec) * 1000;
  });
  return { p50: quantile(walls, 0.5), p90: quantile(walls, 0.9), cpu: (child[0] + child[1]) / n };
}

async function main() {
  const server = await startRedis();
  const redisUrl = server.url;
  const u = new URL(redisUrl);
  const ns = `bench-hooks-${process.pid}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-hooks-'));
  const settings = path.join(dir, '.claude', 'settings.json');
  // The hook carries the deployment it was installed with (its env file), so install with ours.
  execFileSync(path.join(root, 'bin', 'coordbus'), ['hooks', 'install', '--settings', settings], {
    stdio: 'ignore',
    env: { ...process.env, REDIS_URL: redisUrl, COORDBUS_NAMESPACE: ns },
  });
  const hook = path.join(dir, '.claude', 'hooks', 'coordbus-hook.sh');
  const coord = path.join(root, 'bin', 'coord');
  const env = {
    REDIS_URL: redisUrl,
    COORDBUS_NAMESPACE: ns,
    COORDBUS_HOOK_STATE: path.join(dir, 'state'),
    COORD_SESSION_ID: '',
    CLAUDE_SESSION_ID: '',
  };
  Object.assign(process.env, env);
  execFileSync(coord, ['register'], {
    env: { ...process.env, COORD_SESSION_ID: 'bench-session' },
    stdio: 'ignore',
  });

  // The seed's design: a bash wrapper around coord, two backgrounded, timeout-bounded redis-cli
  // calls (pre and post envelope) per op. The coord it wraps is a no-op here, so the row shows
  // the wrapper's own cost, not coord's.
  const seed = path.join(dir, 'seed-coord-with-fanout.sh');
  fs.writeFileSync(
    seed,
    `#!/usr/bin/env bash
[ "\${LOGS_COORD_DISABLED:-}" = 1 ] && exec true
t=\${LOGS_COORD_REDIS_TIMEOUT:-0.25}
env='{"v":0,"ts":"2026-04-07T12:34:56.789Z","service":"coord","host":"h","level":"info","pid":1,"target":"coord::heartbeat","msg":"coord.heartbeat start","fields":{"op":"heartbeat","session":"s","resource":"","peer":"","duration_ms":0,"phase":"pre","exit_code":0}}'
( timeout "$t" redis-cli -h ${u.hostname} -p ${u.port} XADD ${ns}:logs:stream:coord MAXLEN '~' 10000 '*' data "$env" >/dev/null 2>&1 & )
true "$@"; rc=$?
( timeout "$t" redis-cli -h ${u.hostname} -p ${u.port} XADD ${ns}:logs:stream:coord MAXLEN '~' 10000 '*' data "$env" >/dev/null 2>&1 & )
exit $rc
`,
  );
  fs.chmodSync(seed, 0o755);
  // The seed's hook body: `coord heartbeat` backgrounded and disowned on every tool call.
  const seedHook = path.join(dir, 'seed-heartbeat-hook.sh');
  fs.writeFileSync(
    seedHook,
    `#!/usr/bin/env bash\n[ -x '${seed}' ] || exit 0\n'${seed}' heartbeat >/dev/null 2>&1 &\ndisown\nexit 0\n`,
  );
  fs.chmodSync(seedHook, 0o755);

  const toolCall = JSON.stringify({
    session_id: 'bench-session',
    transcript_path: '/home/u/.claude/projects/p/bench-session.jsonl',
    cwd: dir,
    permission_mode: 'default',
    hook_event_name: 'PostToolUse',
    tool_name: 'Bash',
    tool_input: { command: 'npm test -- --runInBand', description: 'run the tests' },
    tool_response: { stdout: 'ok\n'.repeat(800), stderr: '', interrupted: false },
  });
  const bigCall = toolCall.replace('ok\\n', 'x'.repeat(1024 * 1024));

  console.log(
    `bench/hooks: ${CALLS} calls per row, ${os.cpus().length} CPUs, ${os.loadavg()[0].toFixed(2)} load, stdin ${toolCall.length} B`,
  );
  const rows = [];
  const settle = () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2000);
  const gapMs = 30;
  rows.push(['spawn baseline: /bin/true', measure('/bin/true', [], { input: toolCall, gapMs })]);
  rows.push([
    'coordbus hook, PostToolUse, throttled (typical)',
    measure(hook, ['PostToolUse'], { input: toolCall, gapMs }),
  ]);
  rows.push([
    'coordbus hook, PreToolUse (activity spooled)',
    measure(hook, ['PreToolUse'], { input: toolCall.replace('"PostToolUse"', '"PreToolUse"'), gapMs }),
  ]);
  // A project with job hooks: the hook reads .coordbus/hooks.yml on every call (builtins, no grep).
  const project = path.join(dir, 'project');
  fs.mkdirSync(path.join(project, '.coordbus'), { recursive: true });
  fs.writeFileSync(
    path.join(project, '.coordbus', 'hooks.yml'),
    'Stop:\n  - run: npm test\n    timeout: 10m\nSessionEnd:\n  - run: make clean\n',
  );
  rows.push([
    'coordbus hook, PostToolUse, throttled, project with .coordbus/hooks.yml',
    measure(hook, ['PostToolUse'], { input: toolCall, gapMs, cwd: project }),
  ]);
  rows.push([
    'coordbus hook, PostToolUse, 1 MiB stdin',
    measure(hook, ['PostToolUse'], { input: bigCall, n: Math.min(CALLS, 100), gapMs }),
  ]);
  rows.push([
    'seed design: bash hook -> bash wrapper + 2x redis-cli &',
    measure(seedHook, [], { input: toolCall, gapMs }),
  ]);
  settle();
  rows.push([
    'coordbus hook, PostToolUse, fires heartbeat (once per 15 s per session)',
    measure(hook, ['PostToolUse'], {
      input: toolCall,
      n: Math.min(CALLS, 40),
      gapMs: 400,
      sessionPerCall: true,
    }),
  ]);
  settle();

  console.log('\n| PostToolUse path | wall p50 ms | wall p90 ms | CPU ms/call (waited tree) |');
  console.log('|---|---|---|---|');
  for (const [name, m] of rows)
    console.log(`| ${name} | ${m.p50.toFixed(2)} | ${m.p90.toFixed(2)} | ${m.cpu.toFixed(2)} |`);

  // Issue #14 §5's budget is absolute: median <= 5 ms wall and <= 3 ms CPU per throttled
  // PostToolUse call, and that is the target. The same-run spawn floor (/bin/true) stands beside
  // it as context only: this VM's floor has measured from 0.88 to 3.7 ms CPU per spawn (about 4x)
  // from one state of the VM to another, and the hook is two spawns (dash, then head) plus its
  // own work, so across runs compare the hook minus the floor, never the raw figures.
  const [, floor] = rows[0];
  const [, typical] = rows[1];
  for (const [what, key, budget] of [
    ['p50 wall', 'p50', '<= 5'],
    ['CPU per call', 'cpu', '<= 3'],
  ]) {
    const above = typical[key] - floor[key];
    report({
      bench: 'hooks',
      name: `PostToolUse hook (throttled), ${what}`,
      value: typical[key],
      unit: 'ms',
      target: budget,
      context: { name: `spawn floor (/bin/true) ${what}`, value: floor[key] },
      note:
        `hook minus the same-run floor ${above.toFixed(2)} ms; the floor itself varies ~4x between ` +
        "this VM's states (0.88-3.7 ms CPU per spawn seen), so compare runs by that difference",
    });
    console.log(
      `  ${what}: hook ${typical[key].toFixed(2)} ms = floor ${floor[key].toFixed(2)} ms + ${above.toFixed(2)} ms` +
        " (the floor varies ~4x between this VM's states; compare runs by the part above it)",
    );
  }

  // Background work each design leaves per op (waited here, so its CPU is counted).
  const cli = measure(
    'redis-cli',
    ['-h', u.hostname, '-p', u.port, 'XADD', `${ns}:x`, 'MAXLEN', '~', '100', '*', 'k', 'v'],
    { n: 50 },
  );
  const hb = measure(coord, ['heartbeat'], { n: 30, env: { COORD_SESSION_ID: 'bench-session' } });
  console.log(
    `\nbackground work per op: seed design 2 x redis-cli = ${(2 * cli.cpu).toFixed(1)} ms CPU on EVERY tool call;`,
  );
  console.log(
    `coordbus: one \`coord heartbeat\` = ${hb.cpu.toFixed(1)} ms CPU, at most once per 15 s per session (throttle)`,
  );

  // coord heartbeat vs node -e 0, interleaved in one bash loop so load drifts hit both alike.
  const alt = spawnSync(
    'bash',
    [
      '-c',
      `for ((i = 0; i < ${RUNS}; i++)); do
      s=$EPOCHREALTIME; ${process.execPath} -e 0; e=$EPOCHREALTIME; echo "node $s $e"
      s=$EPOCHREALTIME; ${coord} heartbeat >/dev/null 2>&1; e=$EPOCHREALTIME; echo "coord $s $e"
    done`,
    ],
    { env: { ...process.env, COORD_SESSION_ID: 'bench-session' } },
  ).stdout.toString();
  const walls = { node: [], coord: [] };
  for (const l of alt.trim().split('\n')) {
    const [k, a, b] = l.split(' ');
    walls[k].push((Number(b) - Number(a)) * 1000);
  }
  const nodeWalls = walls.node;
  const coordWalls = walls.coord;
  const nodeCpu = [measure(process.execPath, ['-e', '0'], { n: RUNS }).cpu];
  const coordCpu = [
    measure(coord, ['heartbeat'], { n: RUNS, env: { COORD_SESSION_ID: 'bench-session' } }).cpu,
  ];
  const n50 = quantile(nodeWalls, 0.5);
  const c50 = quantile(coordWalls, 0.5);
  const avg = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
  console.log(`\n| start-up (${RUNS} interleaved runs) | wall p50 ms | wall p90 ms | CPU ms (mean) |`);
  console.log('|---|---|---|---|');
  console.log(
    `| node -e 0 | ${n50.toFixed(1)} | ${quantile(nodeWalls, 0.9).toFixed(1)} | ${avg(nodeCpu).toFixed(1)} |`,
  );
  console.log(
    `| coord heartbeat (Redis round trips + fan-out envelopes) | ${c50.toFixed(1)} | ${quantile(coordWalls, 0.9).toFixed(1)} | ${avg(coordCpu).toFixed(1)} |`,
  );
  report({
    bench: 'hooks',
    name: 'coord heartbeat start-up, p50 wall',
    value: c50,
    unit: 'ms',
    baseline: { name: 'node -e 0', value: n50 },
    target: '<= 1.5',
  });

  const redis = new Redis(redisUrl);
  await deleteKeys(redis, `${ns}:*`);
  redis.disconnect();
  fs.rmSync(dir, { recursive: true, force: true });
  server.stop();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
