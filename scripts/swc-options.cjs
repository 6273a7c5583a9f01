'use strict';
// One SWC configuration shared by the build (scripts/build.mjs) and the tests (jest.config.js),
// so what the tests run is compiled exactly like what ships.
const path = require('node:path');
const tsconfig = require('../tsconfig.json');

const root = path.resolve(__dirname, '..');

/** @returns {import('@swc/core').Options} */
function swcOptions() {
  return {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
      keepClassNames: true,
      baseUrl: root,
      paths: tsconfig.compilerOptions.paths,
    },
    module: { type: 'commonjs', strict: true },
    sourceMaps: true,
  };
}

module.exports = { swcOptions, root };
