import { runCoord } from './run';

/** `bin/coord`: the hot-path entry (bundled by apps/cli/coord-bundle.js; no Nest, commander or class-validator). */
export function main(): void {
  runCoord(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`coord: internal error: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
