'use strict';
const { swcOptions } = require('./scripts/swc-options.cjs');

// Nest 12 ships ES modules only. Node 20.19+ can require() them, jest's module loader cannot:
// compile them to CommonJS like our own sources.
const esmToCjs = [
  '@swc/jest',
  { jsc: { parser: { syntax: 'ecmascript' }, target: 'es2022' }, module: { type: 'commonjs' } },
];
const transform = {
  '^.+\\.ts$': ['@swc/jest', { ...swcOptions(), sourceMaps: 'inline' }],
  '/node_modules/@nestjs/.+\\.js$': esmToCjs,
};
const moduleNameMapper = {
  '^@coordbus/(envelope|redis-streams|runtime|coord|event-source|testing|jobs|lua|config)$':
    '<rootDir>/libs/$1/src',
};
const common = {
  transform,
  moduleNameMapper,
  testEnvironment: 'node',
  moduleFileExtensions: ['ts', 'js', 'json'],
  transformIgnorePatterns: ['/node_modules/(?!@nestjs/)'],
};

/** Unit specs sit beside the code (*.spec.ts); integration tests per app/lib (test/*.test.ts under it);
 * whole-system tests in the top-level test/ directory (*.e2e.ts) against the built services. */
module.exports = {
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/{apps,libs,scripts}/**/*.spec.ts', '<rootDir>/test/static/**/*.spec.ts'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/{apps,libs}/*/test/**/*.test.ts'],
      globalSetup: '<rootDir>/libs/testing/src/global-setup.ts',
      globalTeardown: '<rootDir>/libs/testing/src/global-teardown.ts',
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/**/*.e2e.ts'],
      globalSetup: '<rootDir>/libs/testing/src/global-setup.ts',
      globalTeardown: '<rootDir>/libs/testing/src/global-teardown.ts',
    },
  ],
};
