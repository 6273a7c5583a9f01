import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** File name of the installed hook; every settings entry whose command names it is ours. */
export const HOOK_SCRIPT_NAME = 'coordbus-hook.sh';

/** Agent events the installer wires, and what the script does for each (besides `hooks run`). */
export const HOOK_EVENTS = ['SessionStart', 'PostToolUse', 'Stop', 'SessionEnd'] as const;
export type HookEvent = (typeof HOOK_EVENTS)[number];

/** The hook's source beside this file (scripts/build.mjs copies it into dist/). */
export const HOOK_TEMPLATE_PATH = join(__dirname, HOOK_SCRIPT_NAME);

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The POSIX sh hook (coordbus-hook.sh, checked by shellcheck in `npm run lint`) with the paths
 * of `coord` and `coordbus` in place of its `'@COORD@'` and `'@COORDBUS@'` placeholders. What
 * it does and why it is cheap is written in the script itself.
 */
export function renderHookScript(
  paths: { coord: string; coordbus: string },
  template = readFileSync(HOOK_TEMPLATE_PATH, 'utf8'),
): string {
  const values: Record<string, string> = { COORD: paths.coord, COORDBUS: paths.coordbus };
  return template.replace(/'@([A-Z]+)@'/g, (whole, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`${HOOK_TEMPLATE_PATH}: unknown placeholder ${whole}`);
    return shQuote(value);
  });
}
