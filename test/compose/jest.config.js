'use strict';
// Only for `npm run test:compose` (test/compose/run.mjs): the compose whole-system test is not one
// of `npm test`'s projects, since it needs a Docker engine and builds the image.
const base = require('../../jest.config.js');

const e2e = base.projects.find((p) => p.displayName === 'e2e');
module.exports = {
  rootDir: '../..',
  transform: e2e.transform,
  moduleNameMapper: e2e.moduleNameMapper,
  testEnvironment: 'node',
  moduleFileExtensions: e2e.moduleFileExtensions,
  transformIgnorePatterns: e2e.transformIgnorePatterns,
  testMatch: ['<rootDir>/test/compose/**/*.compose.ts'],
  displayName: 'compose',
};
