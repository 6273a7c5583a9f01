import type { LuaCommand } from './commands';

type Arg = string | number | Buffer;

/** What {@link bindCommand} needs of an ioredis client (`Redis` or `Cluster`). */
export interface CommandDefiner {
  /** Without `numberOfKeys`, each call passes its key count first (a variadic command). */
  defineCommand(name: string, definition: { numberOfKeys?: number; lua: string }): void;
}

/** A command bound to a client: keys and arguments as two lists. */
export type BoundCommand<T = unknown> = (keys: readonly Arg[], args?: readonly Arg[]) => Promise<T>;

/**
 * The services' way to run a command: ioredis `defineCommand` (EVALSHA, falling back to EVAL once
 * after a Redis restart flushed the script cache), defined once per client. The same client's
 * `pipeline()` and `multi()` get the command too, under `command.name`.
 */
export function bindCommand<T = unknown>(redis: CommandDefiner, command: LuaCommand): BoundCommand<T> {
  const target = redis as unknown as Record<string, unknown> & { __coordbusLua?: Map<string, string> };
  if (!target.__coordbusLua) {
    Object.defineProperty(target, '__coordbusLua', { value: new Map<string, string>(), enumerable: false });
  }
  const defined = target.__coordbusLua!;
  const sha = defined.get(command.name);
  if (sha === undefined) {
    if (typeof target[command.name] === 'function') {
      throw new Error(
        `cannot define Lua command ${command.name}: the client already has a method of that name`,
      );
    }
    redis.defineCommand(
      command.name,
      command.variadic ? { lua: command.lua } : { numberOfKeys: command.numberOfKeys, lua: command.lua },
    );
    defined.set(command.name, command.sha);
  } else if (sha !== command.sha) {
    throw new Error(`Lua command ${command.name} is defined twice with different scripts on one client`);
  }
  const fn = target[command.name] as (...a: Arg[]) => Promise<T>;
  return (keys, args = []) => {
    const wrong = keyCountError(command, keys.length);
    if (wrong) return Promise.reject(wrong);
    return command.variadic
      ? fn.call(redis, keys.length, ...keys, ...args)
      : fn.call(redis, ...keys, ...args);
  };
}

/** A RangeError when `command` cannot take `n` keys. */
function keyCountError(command: LuaCommand, n: number): RangeError | undefined {
  if (command.variadic ? n >= command.numberOfKeys : n === command.numberOfKeys) return undefined;
  return new RangeError(
    `Lua command ${command.name} takes ${command.variadic ? 'at least ' : ''}${command.numberOfKeys} keys (got ${n})`,
  );
}

/** What {@link evalCommand} needs: a generic command call (the `coord` RESP client, ioredis `call`). */
export interface CommandCaller {
  call(command: string, ...args: Arg[]): Promise<unknown>;
}

/**
 * The `coord` bundle's way to run a command over a generic `call`: EVALSHA, and when the server
 * answers NOSCRIPT (its script cache was flushed or it restarted), EVAL once, which caches it again.
 */
export async function evalCommand(
  client: CommandCaller,
  command: LuaCommand,
  keys: readonly Arg[],
  args: readonly Arg[] = [],
): Promise<unknown> {
  const wrong = keyCountError(command, keys.length);
  if (wrong) throw wrong;
  try {
    return await client.call('EVALSHA', command.sha, keys.length, ...keys, ...args);
  } catch (err) {
    if (!(err instanceof Error) || !/NOSCRIPT/.test(err.message)) throw err;
  }
  return client.call('EVAL', command.lua, keys.length, ...keys, ...args);
}
