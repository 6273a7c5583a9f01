import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * This install's version: the `version` of the repository's package.json, found upward from this
 * file (in src/, dist/ or the coord bundle), so `--version` needs no build-time constant.
 */
export function coordbusVersion(from = __dirname): string {
  let dir = from;
  for (let i = 0; i < 8; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'coordbus' && pkg.version) return pkg.version;
    } catch {
      /* not here */
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

/**
 * The exit codes every coordbus and coord command uses (README "Exit codes"; EXIT_CODES of
 * @coordbus/envelope, which this text is checked against: not imported, as the coord bundle
 * stays free of the envelope's validators).
 */
export const EXIT_CODES_HELP =
  'exit codes: 0 ok, 1 internal, 2 usage, 3 conflict (lock held), 4 not found, 5 redis unavailable, ' +
  '6 no match, 7 invalid input, 8 schema mismatch, 9 kill failed, 10 too large';
