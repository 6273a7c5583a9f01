import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { COORD_SESSION_TTL, HOOK_VARS, SHARED_VARS } from '@coordbus/config';
import { COORD_COMMANDS } from '@coordbus/coord';

/** File name of the installed hook; every settings entry whose command names it is ours. */
export const HOOK_SCRIPT_NAME = 'coordbus-hook.sh';
/** File name of the deployment the hook carries (REDIS_URL, ...), beside the hook. */
export const HOOK_ENV_NAME = 'coordbus-hook.env';

/**
 * Every Claude Code hook event the installer wires (the `hooks` keys of the settings schema, see
 * test/fixtures/claude-code-settings.schema.json), so any of them can key `.coordbus/hooks.yml`
 * and lands in the activity stream. Left out: `WorktreeCreate`, whose hook REPLACES Claude Code's
 * worktree creation (it must print the new worktree's path), so wiring it would break `--worktree`.
 */
export const HOOK_EVENTS = [
  'SessionStart',
  'Setup',
  'InstructionsLoaded',
  'UserPromptSubmit',
  'UserPromptExpansion',
  'PreToolUse',
  'PermissionRequest',
  'PermissionDenied',
  'PostToolUse',
  'PostToolUseFailure',
  'PostToolBatch',
  'Notification',
  'MessageDisplay',
  'SubagentStart',
  'SubagentStop',
  'TaskCreated',
  'TaskCompleted',
  'TeammateIdle',
  'Elicitation',
  'ElicitationResult',
  'CwdChanged',
  'FileChanged',
  'ConfigChange',
  'WorktreeRemove',
  'PreCompact',
  'PostCompact',
  'Stop',
  'StopFailure',
  'SessionEnd',
] as const;
export type HookEvent = (typeof HOOK_EVENTS)[number];

/** Events whose settings entry takes a tool-name matcher (`*`: every tool). */
export const TOOL_EVENTS: readonly HookEvent[] = [
  'PreToolUse',
  'PermissionRequest',
  'PermissionDenied',
  'PostToolUse',
  'PostToolUseFailure',
];

/** The hook's source beside this file (scripts/build.mjs copies it into dist/). */
export const HOOK_TEMPLATE_PATH = join(__dirname, HOOK_SCRIPT_NAME);

/** The Lua the hook sends with redis-cli to write the activity stream (libs/coord commands/activity-2.lua). */
export function activityLua(): string {
  return COORD_COMMANDS.activity.lua;
}

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The POSIX sh hook (coordbus-hook.sh, checked by shellcheck in `npm run lint`) with the paths
 * of `coord`, `coordbus` and the env file, and the activity script, in place of its
 * `'@NAME@'` placeholders. What it does and why it is cheap is written in the script itself.
 */
export function renderHookScript(
  paths: { coord: string; coordbus: string; env: string },
  template = readFileSync(HOOK_TEMPLATE_PATH, 'utf8'),
): string {
  const values: Record<string, () => string> = {
    COORD: () => paths.coord,
    COORDBUS: () => paths.coordbus,
    ENVFILE: () => paths.env,
    ACTIVITY_LUA: activityLua,
  };
  return template.replace(/'@([A-Z_]+)@'/g, (whole, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`${HOOK_TEMPLATE_PATH}: unknown placeholder ${whole}`);
    return shQuote(value());
  });
}

/** Variables of the deployment the installed hook carries, whatever Claude Code's environment is. */
export const HOOK_ENV_VARS = [
  SHARED_VARS.REDIS_URL.name,
  SHARED_VARS.COORDBUS_NAMESPACE.name,
  COORD_SESSION_TTL.name,
  HOOK_VARS.COORD_HEARTBEAT_THROTTLE.name,
  HOOK_VARS.COORDBUS_ACTIVITY_MAXLEN.name,
] as const;

/** The env file: each variable of HOOK_ENV_VARS set in `env` (at install time), exported. */
export function renderHookEnv(env: NodeJS.ProcessEnv): string {
  const set = HOOK_ENV_VARS.filter((name) => env[name] !== undefined && env[name] !== '');
  const lines = [
    '# The deployment the coordbus hook carries, written by `coordbus hooks install` (re-run it to change).',
    ...set.map((name) => `${name}=${shQuote(env[name] as string)}`),
  ];
  if (set.length) lines.push(`export ${set.join(' ')}`);
  return `${lines.join('\n')}\n`;
}
