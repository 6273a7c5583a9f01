import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { InvalidError } from '@coordbus/envelope';
import {
  HOOK_ENV_NAME,
  HOOK_EVENTS,
  HOOK_SCRIPT_NAME,
  HookEvent,
  renderHookEnv,
  renderHookScript,
  TOOL_EVENTS,
} from './hook-script';

/** `~/.claude/settings.json`, the user-level Claude Code settings. */
export function defaultSettingsPath(): string {
  return join(homedir(), '.claude', 'settings.json');
}

/** The repository's bin/ directory (found upward from this file, in src/ or dist/). */
export function repoBin(name: string): string {
  let dir = __dirname;
  for (let i = 0; i < 8; i++) {
    const candidate = join(dir, 'bin', name);
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return resolve(name);
}

interface CommandHook {
  type: string;
  command?: string;
  timeout?: number;
  [k: string]: unknown;
}
interface MatcherGroup {
  matcher?: string;
  hooks: CommandHook[];
  [k: string]: unknown;
}
type Settings = Record<string, unknown> & { hooks?: Record<string, MatcherGroup[]> };

export interface HookPaths {
  settings: string;
  /** Where the hook script is written: `<settings dir>/hooks/coordbus-hook.sh`. */
  script: string;
  /** The deployment the hook carries: `<settings dir>/hooks/coordbus-hook.env`. */
  env: string;
  coord: string;
  coordbus: string;
}

export function hookPaths(settings?: string, bins: { coord?: string; coordbus?: string } = {}): HookPaths {
  const s = resolve(settings ?? defaultSettingsPath());
  return {
    settings: s,
    script: join(dirname(s), 'hooks', HOOK_SCRIPT_NAME),
    env: join(dirname(s), 'hooks', HOOK_ENV_NAME),
    coord: resolve(bins.coord ?? repoBin('coord')),
    coordbus: resolve(bins.coordbus ?? repoBin('coordbus')),
  };
}

function shQuote(s: string): string {
  return /^[A-Za-z0-9_./:@+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The settings entry of one event: a command hook running the script with the event's name. */
function entryFor(event: HookEvent, script: string): MatcherGroup {
  const hook: CommandHook = { type: 'command', command: `${shQuote(script)} ${event}`, timeout: 10 };
  return TOOL_EVENTS.includes(event) ? { matcher: '*', hooks: [hook] } : { hooks: [hook] };
}

function isOurs(h: CommandHook): boolean {
  return typeof h?.command === 'string' && h.command.includes(HOOK_SCRIPT_NAME);
}

/**
 * Reads and checks a settings file. Missing or blank: `{}`. Anything that is not a JSON object
 * with a `hooks` object of arrays is refused with InvalidError (and the file is left untouched).
 */
export function readSettings(path: string): { settings: Settings; raw: string | undefined } {
  let raw: string | undefined;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { settings: {}, raw: undefined };
    throw err;
  }
  if (!raw.trim()) return { settings: {}, raw };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new InvalidError(`${path} is not valid JSON (${(err as Error).message}); left it untouched`, [
      `${path}: JSON`,
    ]);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidError(`${path} must hold a JSON object; left it untouched`, [`${path}: object`]);
  }
  const settings = parsed as Settings;
  if (settings.hooks !== undefined) {
    if (typeof settings.hooks !== 'object' || settings.hooks === null || Array.isArray(settings.hooks)) {
      throw new InvalidError(`${path}: "hooks" must be an object; left it untouched`, ['hooks: object']);
    }
    for (const [event, groups] of Object.entries(settings.hooks)) {
      if (
        !Array.isArray(groups) ||
        groups.some((g) => typeof g !== 'object' || g === null || !Array.isArray((g as MatcherGroup).hooks))
      ) {
        throw new InvalidError(
          `${path}: "hooks.${event}" must be an array of {matcher?, hooks: [...]}; left it untouched`,
          [`hooks.${event}: array of matcher groups`],
        );
      }
    }
  }
  return { settings, raw };
}

/** A group list without our hooks; groups left empty by that are dropped (only those). */
function cleaned(groups: MatcherGroup[], keep: (h: CommandHook) => boolean = () => false): MatcherGroup[] {
  const kept: MatcherGroup[] = [];
  for (const g of groups) {
    if (!g.hooks.some((h) => isOurs(h) && !keep(h))) {
      kept.push(g);
      continue;
    }
    const rest = g.hooks.filter((h) => !isOurs(h) || keep(h));
    if (rest.length) kept.push({ ...g, hooks: rest });
  }
  return kept;
}

/** Removes every hook of ours; drops the groups and events left empty by that (only those). */
function withoutOurs(settings: Settings): Settings {
  if (!settings.hooks) return settings;
  const hooks: Record<string, MatcherGroup[]> = {};
  for (const [event, groups] of Object.entries(settings.hooks)) {
    const kept = cleaned(groups);
    if (kept.length || !groups.some((g) => g.hooks.some(isOurs))) hooks[event] = kept;
  }
  const out: Settings = { ...settings, hooks };
  if (!Object.keys(hooks).length) delete out.hooks;
  return out;
}

/**
 * Our hook on every event of HOOK_EVENTS, leaving an event that already has exactly it alone
 * (so a re-install changes nothing), replacing stale ones (another path), and dropping ours
 * from events no longer installed.
 */
function withOurs(settings: Settings, script: string): Settings {
  const hooks: Record<string, MatcherGroup[]> = {};
  for (const [event, groups] of Object.entries(settings.hooks ?? {})) {
    if ((HOOK_EVENTS as readonly string[]).includes(event)) hooks[event] = groups;
    else if (groups.some((g) => g.hooks.some(isOurs))) {
      const kept = cleaned(groups);
      if (kept.length) hooks[event] = kept;
    } else hooks[event] = groups;
  }
  for (const event of HOOK_EVENTS) {
    const want = entryFor(event, script);
    const command = want.hooks[0].command;
    const groups = hooks[event] ?? [];
    const ours = groups.flatMap((g) => g.hooks.filter(isOurs));
    if (ours.length === 1 && ours[0].command === command) continue;
    hooks[event] = [...cleaned(groups), want];
  }
  return { ...settings, hooks };
}

function atomicWrite(path: string, text: string, mode?: number): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, mode === undefined ? undefined : { mode });
  if (mode !== undefined) chmodSync(tmp, mode);
  renameSync(tmp, path);
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export interface HookStatus {
  settings: string;
  script: string;
  script_installed: boolean;
  coord: string;
  coord_executable: boolean;
  events: Record<HookEvent, boolean>;
  installed: boolean;
}

export type InstallOutcome = { changed: boolean; message: string; backup?: string; paths: HookPaths };

/**
 * Installs the hooks: writes the hook script and adds one command hook per event to the
 * settings, keeping every other setting and hook. Idempotent: when everything is already in
 * place nothing is written (`coord hooks: already installed`). The settings file is written
 * atomically after copying the old one to `<settings>.bak`.
 */
export function installHooks(paths: HookPaths, env: NodeJS.ProcessEnv = process.env): InstallOutcome {
  const { settings, raw } = readSettings(paths.settings);
  const next = withOurs(settings, paths.script);
  const script = renderHookScript({ coord: paths.coord, coordbus: paths.coordbus, env: paths.env });
  const envText = renderHookEnv(env);
  const sameSettings = raw !== undefined && JSON.stringify(next) === JSON.stringify(settings);
  const scriptNow = readText(paths.script);
  const sameScript = scriptNow === script && (statSync(paths.script).mode & 0o111) !== 0;
  const sameEnv = readText(paths.env) === envText;
  if (sameSettings && sameScript && sameEnv)
    return { changed: false, message: 'coord hooks: already installed', paths };
  // Owner-only: REDIS_URL may hold a password.
  if (!sameEnv) atomicWrite(paths.env, envText, 0o600);
  if (!sameScript) atomicWrite(paths.script, script, 0o755);
  let backup: string | undefined;
  if (!sameSettings) {
    if (raw !== undefined) {
      backup = `${paths.settings}.bak`;
      copyFileSync(paths.settings, backup);
    }
    atomicWrite(paths.settings, `${JSON.stringify(next, null, 2)}\n`);
  }
  return {
    changed: true,
    message: `coord hooks: installed (${HOOK_EVENTS.join(', ')}) in ${paths.settings}`,
    backup,
    paths,
  };
}

/** Removes our hooks (and only ours) and the hook script. */
export function uninstallHooks(paths: HookPaths): InstallOutcome {
  const { settings, raw } = readSettings(paths.settings);
  const next = withoutOurs(settings);
  const changedSettings = raw !== undefined && JSON.stringify(next) !== JSON.stringify(settings);
  const hadScript = existsSync(paths.script) || existsSync(paths.env);
  if (!changedSettings && !hadScript) return { changed: false, message: 'coord hooks: not installed', paths };
  let backup: string | undefined;
  if (changedSettings) {
    backup = `${paths.settings}.bak`;
    copyFileSync(paths.settings, backup);
    atomicWrite(paths.settings, `${JSON.stringify(next, null, 2)}\n`);
  }
  rmSync(paths.script, { force: true });
  rmSync(paths.env, { force: true });
  return { changed: true, message: `coord hooks: uninstalled from ${paths.settings}`, backup, paths };
}

export function hooksStatus(paths: HookPaths): HookStatus {
  const { settings } = readSettings(paths.settings);
  const expected = renderHookScript({ coord: paths.coord, coordbus: paths.coordbus, env: paths.env });
  const events = {} as Record<HookEvent, boolean>;
  for (const event of HOOK_EVENTS) {
    const want = entryFor(event, paths.script).hooks[0].command;
    events[event] = !!settings.hooks?.[event]?.some((g) => g.hooks.some((h) => h.command === want));
  }
  let coordExecutable = false;
  try {
    coordExecutable = (statSync(paths.coord).mode & 0o111) !== 0;
  } catch {
    /* missing */
  }
  const scriptInstalled = readText(paths.script) === expected;
  return {
    settings: paths.settings,
    script: paths.script,
    script_installed: scriptInstalled,
    coord: paths.coord,
    coord_executable: coordExecutable,
    events,
    installed: scriptInstalled && Object.values(events).every(Boolean),
  };
}
