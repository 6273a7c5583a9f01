#!/usr/bin/env node
// `npm test`: build, then the unit, integration and whole-system (e2e) jest projects in turn.
// Redis: REDIS_URL when set, else a redis-server started on a free port by the jest global setup,
// else a testcontainers Redis where Docker runs. Extra arguments go to every jest run
// (e.g. `npm test -- libs/envelope`). Ends with one summary line: `N passed, N failed`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(import.meta.url), '..', '..');
const extra = process.argv.slice(2);
const only = process.env.COORDBUS_TEST_PROJECTS?.split(',') ?? ['unit', 'integration', 'e2e'];

const build = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], {
  stdio: 'inherit',
  cwd: root,
});
if (build.status !== 0) process.exit(build.status ?? 1);

const jest = join(root, 'node_modules', 'jest', 'bin', 'jest.js');
const out = mkdtempSync(join(tmpdir(), 'coordbus-test-'));
let passed = 0;
let failed = 0;
let skipped = 0;
let status = 0;
const started = Date.now();
for (const project of only) {
  const file = join(out, `${project}.json`);
  // Unit specs are pure and run in parallel; Redis-backed suites run in band on 2 cores.
  const args = [jest, '--selectProjects', project, '--json', '--outputFile', file, '--passWithNoTests'];
  if (project !== 'unit') args.push('--runInBand');
  const t0 = Date.now();
  const run = spawnSync(process.execPath, [...args, ...extra], {
    stdio: 'inherit',
    cwd: root,
    env: process.env,
  });
  let results;
  try {
    results = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    console.error(`jest ${project} produced no results (exit ${run.status})`);
    status = 1;
    continue;
  }
  passed += results.numPassedTests;
  failed += results.numFailedTests;
  skipped += results.numPendingTests + results.numTodoTests;
  if (run.status !== 0) status = run.status ?? 1;
  console.log(
    `[${project}] ${results.numPassedTests} passed, ${results.numFailedTests} failed in ${Math.round((Date.now() - t0) / 1000)} s`,
  );
}
rmSync(out, { recursive: true, force: true });
if (passed + failed === 0) {
  console.error('no test ran');
  status = 1;
}
console.log(`\nall projects in ${Math.round((Date.now() - started) / 1000)} s`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(status);
