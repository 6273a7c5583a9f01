#!/usr/bin/env node
'use strict';
// Bundles the `coord` hot path (bin/coord, bin/coord-with-fanout) with esbuild into
// dist/coord/*.js: one file each, only node builtins outside it, and `@coordbus/envelope`
// mapped to its class-validator-free part (libs/coord/src/envelope-lite.ts), so a
// `coord heartbeat` loads ~100 KB of JS instead of Nest/commander/class-validator/ioredis.
// bin/coord runs this on demand when the bundle is missing or older than the last build.
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const outDir = path.join(root, 'dist', 'coord');
const ENTRIES = {
  coord: path.join(root, 'apps/cli/src/coord/entry.ts'),
  'coord-with-fanout': path.join(root, 'apps/cli/src/coord/wrapper.ts'),
};

function buildSync() {
  const esbuild = require('esbuild');
  fs.mkdirSync(outDir, { recursive: true });
  for (const [name, entry] of Object.entries(ENTRIES)) {
    const result = esbuild.buildSync({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      write: false,
      minify: false,
      legalComments: 'none',
      tsconfig: path.join(root, 'tsconfig.json'),
      alias: { '@coordbus/envelope': path.join(root, 'libs/coord/src/envelope-lite.ts') },
      logLevel: 'error',
    });
    // temp + rename: concurrent first runs (many hooks at once) never see half a file.
    const target = path.join(outDir, `${name}.js`);
    const tmp = `${target}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, result.outputFiles[0].contents);
    fs.renameSync(tmp, target);
  }
}

module.exports = { buildSync, outDir };
if (require.main === module) {
  const t = Date.now();
  buildSync();
  console.log(`bundled coord into ${path.relative(root, outDir)} in ${Date.now() - t} ms`);
}
