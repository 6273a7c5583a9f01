import Redis from 'ioredis';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isRetryable, toCoordbusError } from '@coordbus/envelope';
import { bindCommand, buildCommands, LuaCommand, readLuaFiles } from '@coordbus/lua';
import { TestRedisServer } from '@coordbus/testing';

jest.setTimeout(60_000);

/** Every command of every `src/commands` directory of the repository. */
function everyCommand(): LuaCommand[] {
  const root = join(__dirname, '..', '..', '..');
  return ['apps', 'libs'].flatMap((top) =>
    readdirSync(join(root, top))
      .map((pkg) => join(root, top, pkg, 'src', 'commands'))
      .filter((dir) => existsSync(dir))
      .flatMap((dir) => Object.values(buildCommands(readLuaFiles(dir), dir))),
  );
}

/**
 * Issue 13 §1: Redis at `maxmemory` (noeviction) is an outage, and a script must meet it as a
 * whole. Without a `#!lua` line Redis 7 checks OOM only up to a script's first write, so the
 * fan-out (whose first write was a trim of its dedup set) went on appending past the limit and
 * never saw the outage. This Redis is the test's own: CONFIG SET maxmemory here touches nobody.
 */
describe('Lua commands at maxmemory (real Redis, noeviction)', () => {
  const server = new TestRedisServer({ args: ['--maxmemory-policy', 'noeviction'] });
  let redis: Redis;
  const commands = everyCommand();

  beforeAll(async () => {
    await server.start();
    redis = new Redis(server.url);
  });
  afterEach(async () => {
    await redis.config('SET', 'maxmemory', '0');
  });
  afterAll(async () => {
    redis.disconnect();
    await server.dispose();
  });

  it('finds the commands', () => {
    expect(commands.map((c) => c.name)).toEqual(expect.arrayContaining(['fanout', 'lock', 'trimAckAware']));
  });

  it('the fan-out writes nothing past maxmemory: refused whole with a retryable OOM, then runs once it is lifted', async () => {
    const fanout = commands.find((c) => c.name === 'fanout')!;
    const run = bindCommand<number[]>(redis, fanout);
    const keys = ['oom:{r}:replay', 'oom:{r}:dedup'];
    const args = (id: string) => [
      String(Date.now()),
      '60000',
      '1000',
      'oom:logs.coord.',
      id,
      'info',
      'm',
      's',
      '{}',
    ];
    // A dedup set with something to trim: the trim was the write that let the rest through.
    await redis.zadd(keys[1], '1', 'old-id');
    expect(await run(keys, args('1-0'))).toEqual([1]);
    await redis.config('SET', 'maxmemory', '1');
    const err = await run(keys, args('2-0')).then(
      () => new Error('ran at maxmemory'),
      (e: Error) => e,
    );
    expect(err.message).toMatch(/^OOM command not allowed/);
    expect(isRetryable(err)).toBe(true);
    expect(toCoordbusError(err).code).toBe('Unavailable');
    expect(await redis.xlen(keys[0])).toBe(1);
    await redis.config('SET', 'maxmemory', '0');
    expect(await run(keys, args('2-0'))).toEqual([1]);
    expect(await redis.xlen(keys[0])).toBe(2);
  });

  it('every writing command is refused before it runs; the ones that only free memory or read still run', async () => {
    await redis.flushall();
    await redis.set('oom:marker', 'x');
    await redis.config('SET', 'maxmemory', '1');
    const outcome: Record<string, string> = {};
    const expected: Record<string, string> = {};
    for (const c of commands) {
      const first = c.lua.slice(0, c.lua.indexOf('\n'));
      expected[c.name] = /allow-oom|no-writes/.test(first) ? 'ran' : 'OOM';
      // Arguments do not matter to a script refused before it runs; the others may fail on them.
      const keys = Array.from({ length: c.numberOfKeys }, (_, i) => `oom:{k}:${c.name}:${i}`);
      const args = Array.from({ length: 6 }, () => '1');
      outcome[c.name] = await redis.call('EVAL', c.lua, c.numberOfKeys, ...keys, ...args).then(
        () => 'ran',
        (e: Error) => (/^OOM\b/.test(e.message) ? 'OOM' : 'ran'),
      );
    }
    expect(outcome).toEqual(expected);
    expect(Object.values(expected)).toContain('ran');
    expect(Object.values(expected)).toContain('OOM');
    // Nothing was written at maxmemory.
    expect(await redis.dbsize()).toBe(1);
  });
});
