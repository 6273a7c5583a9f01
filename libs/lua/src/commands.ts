import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';

/**
 * A Redis Lua script loaded from `<dir>/<name>-<numberOfKeys>.lua` (BullMQ's layout): the file
 * name says how many of the arguments are KEYS, so callers pass keys and args as two lists.
 * `<name>-<n>+.lua` takes n keys or more (a batch with one key per item: every key a script
 * touches is still passed as a key, as Redis Cluster requires), `variadic`.
 */
export interface LuaCommand {
  readonly name: string;
  /** The keys it takes; the least it takes when `variadic`. */
  readonly numberOfKeys: number;
  readonly variadic: boolean;
  /** The script with every `--- @include` resolved. */
  readonly lua: string;
  /** SHA1 of `lua`, for EVALSHA. */
  readonly sha: string;
}

/** The `.lua` files of one commands directory, by path relative to it (`lock-5.lua`, `includes/prelude.lua`). */
export type LuaFiles = Readonly<Record<string, string>>;

const COMMAND_FILE = /^([A-Za-z][A-Za-z0-9]*)-(\d+)(\+?)\.lua$/;
const INCLUDE = /^--- @include "([^"]+)"[ \t]*$/gm;

/** Every `.lua` file under `dir` (recursively), keyed by its `/`-separated path relative to `dir`. */
export function readLuaFiles(dir: string): LuaFiles {
  const out: Record<string, string> = {};
  const walk = (sub: string): void => {
    for (const name of readdirSync(join(dir, sub)).sort()) {
      const rel = sub ? `${sub}/${name}` : name;
      if (statSync(join(dir, rel)).isDirectory()) walk(rel);
      else if (name.endsWith('.lua')) out[rel] = readFileSync(join(dir, rel), 'utf8');
    }
  };
  walk('');
  return out;
}

/**
 * Builds one command per top-level `<name>-<numberOfKeys>[+].lua` of `files`. A command's first line
 * is its `#!lua` shebang, kept first: with it Redis 7 refuses the whole script with OOM at
 * `maxmemory` before it runs (unless `flags=allow-oom`), where a script without one is checked only
 * until its first write, so a script opening with a delete would write on past the limit. A line
 * `--- @include "includes/prelude"` is replaced by that file (relative to the including one,
 * `.lua` implied), once per script however often it is named; files only included (any file not
 * named `<name>-<n>.lua`, by convention under `includes/`) are not commands themselves.
 * Throws, naming the file, on an include that is missing or includes itself.
 */
export function buildCommands(files: LuaFiles, where = 'commands'): Record<string, LuaCommand> {
  const commands: Record<string, LuaCommand> = {};
  for (const file of Object.keys(files).sort()) {
    const m = COMMAND_FILE.exec(file);
    if (!m) continue;
    const lua = resolveIncludes(files, file, where, new Set(), []);
    commands[m[1]] = {
      name: m[1],
      numberOfKeys: Number(m[2]),
      variadic: m[3] === '+',
      lua,
      sha: createHash('sha1').update(lua).digest('hex'),
    };
  }
  return commands;
}

function resolveIncludes(
  files: LuaFiles,
  file: string,
  where: string,
  done: Set<string>,
  stack: string[],
): string {
  if (stack.includes(file))
    throw new Error(`${where}: ${[...stack, file].join(' includes ')}: an include cycle`);
  const text = files[file];
  // Redis reads a script's flags only from its very first line (`#!lua flags=...`).
  if (stack.length > 0 && text.startsWith('#!'))
    throw new Error(
      `${where}/${file}: an included file cannot carry a #! line (only a command's first line can)`,
    );
  return text.replace(INCLUDE, (_line, target: string) => {
    const path = posix.normalize(posix.join(posix.dirname(file), `${target}.lua`));
    if (files[path] === undefined) {
      throw new Error(`${where}/${file}: --- @include "${target}" names ${path}, which does not exist`);
    }
    if (done.has(path)) return `-- (${target} included above)`;
    done.add(path);
    return resolveIncludes(files, path, where, done, [...stack, file]);
  });
}

/**
 * The commands of a `src/commands` directory: read from `dir` (the sources under jest, the
 * copies scripts/build.mjs puts beside the compiled code), or from `inlined`, which the `coord`
 * esbuild bundle passes (apps/cli/coord-bundle.js rewrites `loadCommands(__dirname)` in a
 * `commands/index.ts` to inline that directory's files with esbuild's text loader).
 */
export function loadCommands(dir: string, inlined?: LuaFiles): Record<string, LuaCommand> {
  return buildCommands(inlined ?? readLuaFiles(dir), dir);
}
