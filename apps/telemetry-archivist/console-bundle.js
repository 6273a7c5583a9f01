'use strict';
// Bundles the fleet console (apps/telemetry-archivist/console: Preact + htm, uPlot) with esbuild
// from the npm packages into dist/console/{index.html,app.js,app.css}, which the archivist serves
// at `/`. No CDN: the page works offline.
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const src = path.join(__dirname, 'console');
const outDir = path.join(root, 'dist', 'console');

function buildSync() {
  const esbuild = require('esbuild');
  fs.mkdirSync(outDir, { recursive: true });
  esbuild.buildSync({
    entryPoints: { app: path.join(src, 'app.js') },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110', 'firefox110', 'safari16'],
    outdir: outDir,
    minify: true,
    sourcemap: false,
    legalComments: 'linked',
    logLevel: 'error',
  });
  fs.copyFileSync(path.join(src, 'index.html'), path.join(outDir, 'index.html'));
}

module.exports = { buildSync };
