#!/usr/bin/env node
// Compiles every app and lib with SWC (type checking is `npm run typecheck`, part of lint).
// Output mirrors the source tree under dist/, and each app gets dist/apps/<app>/main.js.
// Files the code reads at run time beside itself (Lua commands, the agent hook, the service table,
// worker-thread scripts) are copied as is.
import { spawnSync } from 'node:child_process';
import { copyFileSync, readdirSync, statSync, mkdirSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const swc = require('@swc/core');
const { swcOptions, root } = require('./swc-options.cjs');

const outDir = join(root, 'dist');
const skip = (name) => name.endsWith('.spec.ts') || name.endsWith('.test.ts') || name.endsWith('.d.ts');
const ASSETS = ['.lua', '.sh', '.json', '.cjs'];

function* walk(dir, wanted) {
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) {
      if (name === 'node_modules' || name === 'test' || name === '__fixtures__') continue;
      yield* walk(full, wanted);
    } else if (wanted(name)) {
      yield full;
    }
  }
}

const started = Date.now();
if (process.argv.includes('--clean')) rmSync(outDir, { recursive: true, force: true });
const options = swcOptions();
const files = [];
const assets = [];
for (const top of ['apps', 'libs']) {
  const dir = join(root, top);
  if (!existsSync(dir)) continue;
  files.push(...walk(dir, (name) => name.endsWith('.ts') && !skip(name)));
  assets.push(...walk(dir, (name) => ASSETS.some((ext) => name.endsWith(ext))));
}
for (const file of assets) {
  const target = join(outDir, relative(root, file));
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(file, target);
}
await Promise.all(
  files.map(async (file) => {
    const rel = relative(root, file);
    const target = join(outDir, rel.replace(/\.ts$/, '.js'));
    const { code, map } = await swc.transformFile(file, {
      ...options,
      filename: file,
      sourceFileName: relative(dirname(target), file),
    });
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, `${code}\n//# sourceMappingURL=${target.split('/').pop()}.map\n`);
    writeFileSync(`${target}.map`, map);
  }),
);
// dist/apps/<app>/main.js is the documented entry point of every app.
const appsDir = join(root, 'apps');
for (const app of existsSync(appsDir) ? readdirSync(appsDir) : []) {
  if (existsSync(join(appsDir, app, 'src', 'main.ts'))) {
    writeFileSync(join(outDir, 'apps', app, 'main.js'), "'use strict';\nrequire('./src/main.js');\n");
  }
}
buildNative();
// The `coord` hot path runs from one esbuild bundle (no Nest, commander or ioredis to load).
await require(join(root, 'apps', 'cli', 'coord-bundle.js')).build();
// The fleet console's page, bundled from npm packages (served by the telemetry-archivist).
require(join(root, 'apps', 'telemetry-archivist', 'console-bundle.js')).buildSync();

/**
 * The job-coordinator's spawn addon (libs/jobs/native/spawn.c), compiled against the Node-API
 * headers (no Node version ties, no node-gyp). Optional: without a C compiler the build goes on
 * and replicas fork their jobs from a helper process instead, as they say when they start.
 */
function buildNative() {
  const source = join(root, 'libs', 'jobs', 'native', 'spawn.c');
  const target = join(outDir, 'libs', 'jobs', 'native', 'coordbus_spawn.node');
  if (existsSync(target) && statSync(target).mtimeMs >= statSync(source).mtimeMs) return;
  mkdirSync(dirname(target), { recursive: true });
  const include = join(dirname(require.resolve('node-api-headers/package.json')), 'include');
  const cc = process.env.CC || 'cc';
  const args = ['-std=gnu11', '-O2', '-Wall', '-fPIC', '-shared', `-I${include}`, '-o', target, source];
  const run = spawnSync(cc, args, { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' });
  if (run.status === 0) return;
  rmSync(target, { force: true });
  const why = run.error ? `${cc} not found` : `${cc} failed:\n${run.stderr.trim()}`;
  console.warn(
    `warning: the job-coordinator's spawn addon was not built (${why})\n` +
      '  jobs still run, forked through child_process (slower per job); install a C compiler ' +
      '(Debian: apt-get install gcc) or set CC, then npm run build',
  );
}

console.log(
  `built ${files.length} files (+${assets.length} copied) into dist/ in ${Date.now() - started} ms`,
);
