import Redis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { RespClient } from '@coordbus/coord';
import { bindCommand, buildCommands, evalCommand } from '@coordbus/lua';
import { testKeyspace, testRedisUrl } from '@coordbus/testing';

/** A script no Redis has cached yet (a random comment changes its SHA): its first EVALSHA gets NOSCRIPT. */
function fresh() {
  return buildCommands({
    'setGet-1.lua': `-- ${randomBytes(8).toString('hex')}\nredis.call('SET', KEYS[1], ARGV[1])\nreturn redis.call('GET', KEYS[1])\n`,
  }).setGet;
}

describe('running Lua commands (real Redis)', () => {
  let redis: Redis;
  let resp: RespClient;
  const key = () => testKeyspace('lua').coordKey('k');

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
    resp = new RespClient(testRedisUrl());
  });
  afterAll(async () => {
    redis.disconnect();
    await resp.close();
  });

  it('evalCommand: EVALSHA, and EVAL once when the server does not have the script', async () => {
    const cmd = fresh();
    const k = key();
    expect(await redis.script('EXISTS', cmd.sha)).toEqual([0]);
    expect(await evalCommand(resp, cmd, [k], ['one'])).toBe('one');
    expect(await redis.script('EXISTS', cmd.sha)).toEqual([1]);
    expect(await evalCommand(resp, cmd, [k], ['two'])).toBe('two');
    await redis.del(k);
  });

  it('bindCommand: defineCommand on the client, also in pipelines; a wrong key count is refused', async () => {
    const cmd = fresh();
    const k = key();
    const run = bindCommand<string>(redis, cmd);
    expect(await run([k], ['a'])).toBe('a');
    expect(bindCommand(redis, cmd)).toBeInstanceOf(Function);
    const pipe = redis.pipeline() as unknown as Record<
      string,
      (...a: string[]) => { exec(): Promise<unknown> }
    >;
    const res = await pipe[cmd.name](k, 'b').exec();
    expect(res).toEqual([[null, 'b']]);
    await expect(run([k, k], ['x'])).rejects.toThrow('Lua command setGet takes 1 keys (got 2)');
    expect(() => bindCommand(redis, fresh())).toThrow(/defined twice with different scripts/);
    await redis.del(k);
  });

  it('a variadic command (`<name>-<n>+.lua`) takes n keys or more, by bindCommand and evalCommand alike', async () => {
    const cmd = buildCommands({
      [`setAll${randomBytes(4).toString('hex')}-1+.lua`]:
        "for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[i]) end\nreturn #KEYS\n",
    });
    const c = Object.values(cmd)[0];
    expect(c).toMatchObject({ numberOfKeys: 1, variadic: true });
    const ks = testKeyspace('lua');
    const keys = [ks.coordKey('a'), ks.coordKey('b'), ks.coordKey('c')];
    const run = bindCommand<number>(redis, c);
    expect(await run(keys, ['1', '2', '3'])).toBe(3);
    expect(await redis.mget(...keys)).toEqual(['1', '2', '3']);
    expect(await run(keys.slice(0, 1), ['9'])).toBe(1);
    expect(await evalCommand(resp, c, keys.slice(1), ['8', '7'])).toBe(2);
    expect(await redis.mget(...keys)).toEqual(['9', '8', '7']);
    await expect(run([], [])).rejects.toThrow(`Lua command ${c.name} takes at least 1 keys (got 0)`);
    await redis.del(...keys);
  });
});
