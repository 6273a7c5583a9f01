/**
 * The part of `@coordbus/envelope` the `coord` hot path uses — errors, exit codes and names,
 * none of which load class-validator or reflect-metadata. The `coord` bundle
 * (apps/cli/coord-bundle.js) maps `@coordbus/envelope` to this file; everything else imports
 * the real barrel. Anything the hot path imports that is missing here fails the bundle build.
 */
// The barrel would load class-validator: these two files are the deliberate way past it.
/* eslint-disable coordbus/import-boundaries */
export * from '../../envelope/src/errors';
export * from '../../envelope/src/names';
/* eslint-enable coordbus/import-boundaries */
