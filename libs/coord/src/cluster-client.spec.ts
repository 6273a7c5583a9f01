import { InvalidError } from '@coordbus/envelope';
import { commandKey, keySlot, redisClusterFromEnv } from './cluster-client';

describe('keySlot', () => {
  it('matches CLUSTER KEYSLOT', () => {
    // Answers of a real Redis 7 `CLUSTER KEYSLOT`.
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('bar')).toBe(5061);
    expect(keySlot('123456789')).toBe(0x31c3 % 16384);
    expect(keySlot('coord:{coord}:events')).toBe(3953);
    expect(keySlot('team-a:coord:{ingest}')).toBe(6899);
  });

  it('hashes the first non-empty hash tag only', () => {
    expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));
    expect(keySlot('foo{bar}{zap}')).toBe(keySlot('bar'));
    // An empty tag means the whole key; `{{bar}}` hashes `{bar`; UTF-8 bytes (CLUSTER KEYSLOT answers).
    expect(keySlot('foo{}{bar}')).toBe(8363);
    expect(keySlot('foo{{bar}}zap')).toBe(4015);
    expect(keySlot('a:{é}:b')).toBe(10180);
  });
});

describe('commandKey', () => {
  it('routes scripts by their first key and keyless scripts nowhere in particular', () => {
    expect(commandKey(['EVALSHA', 'abc', 2, 'k1', 'k2', 'argv'])).toBe('k1');
    expect(commandKey(['eval', 'return 1', '0', 'argv'])).toBeUndefined();
  });

  it('finds the stream of XREAD/XREADGROUP after STREAMS', () => {
    expect(commandKey(['XREADGROUP', 'GROUP', 'g', 'c', 'COUNT', 1, 'STREAMS', 's1', '>'])).toBe('s1');
    expect(commandKey(['XREAD', 'BLOCK', 0, 'streams', 's2', '$'])).toBe('s2');
  });

  it('treats TIME, PING and friends as keyless, and anything else as keyed by its first argument', () => {
    expect(commandKey(['TIME'])).toBeUndefined();
    expect(commandKey(['PING'])).toBeUndefined();
    expect(commandKey(['SCRIPT', 'LOAD', 'return 1'])).toBeUndefined();
    expect(commandKey(['BLPOP', 'inbox', '1.000'])).toBe('inbox');
    expect(commandKey(['XADD', 'coord:{ingest}', '*', 'a', 'b'])).toBe('coord:{ingest}');
  });
});

describe('redisClusterFromEnv', () => {
  it('reads the same booleans as the services, default off', () => {
    expect(redisClusterFromEnv({})).toBe(false);
    expect(redisClusterFromEnv({ REDIS_CLUSTER: '' })).toBe(false);
    expect(redisClusterFromEnv({ REDIS_CLUSTER: '1' })).toBe(true);
    expect(redisClusterFromEnv({ REDIS_CLUSTER: 'Yes' })).toBe(true);
    expect(redisClusterFromEnv({ REDIS_CLUSTER: 'off' })).toBe(false);
  });

  it('rejects anything else with an InvalidError naming the variable', () => {
    expect(() => redisClusterFromEnv({ REDIS_CLUSTER: 'cluster' })).toThrow(InvalidError);
    expect(() => redisClusterFromEnv({ REDIS_CLUSTER: 'cluster' })).toThrow(
      /REDIS_CLUSTER must be a boolean/,
    );
  });
});
