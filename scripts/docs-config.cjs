#!/usr/bin/env node
'use strict';
// `npm run docs:config`: rewrites the configuration tables of README.md (between the
// config:begin / config:end markers) from the variable definitions in libs/config. With
// --check it only reports whether README.md is up to date (exit 1 when it drifted).
const fs = require('node:fs');
const path = require('node:path');
const swc = require('@swc/core');
const { swcOptions, root } = require('./swc-options.cjs');

// libs/config is dependency-free TypeScript: compile its files on require, no build needed.
require.extensions['.ts'] = (module, filename) => {
  const { code } = swc.transformSync(fs.readFileSync(filename, 'utf8'), {
    ...swcOptions(),
    sourceMaps: false,
    filename,
  });
  module._compile(code, filename);
};

const { spliceConfigDocs } = require(path.join(root, 'libs/config/src/docs.ts'));
const readmePath = path.join(root, 'README.md');
const readme = fs.readFileSync(readmePath, 'utf8');
const next = spliceConfigDocs(readme);
if (process.argv.includes('--check')) {
  if (next !== readme) {
    console.error('README.md configuration tables are out of date: run npm run docs:config');
    process.exit(1);
  }
} else if (next !== readme) {
  fs.writeFileSync(readmePath, next);
  console.log('README.md configuration tables updated');
} else {
  console.log('README.md configuration tables already up to date');
}
