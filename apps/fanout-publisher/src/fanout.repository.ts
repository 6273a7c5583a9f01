import { createHash } from 'node:crypto';
import type Redis from 'ioredis';
import { CoordOpEnvelope, Keyspace } from '@coordbus/envelope';

/**
 * Fans one envelope out, exactly once per ingest entry id.
 *
 * KEYS[1] the replay stream (`logs:stream:coord`), KEYS[2] the dedup zset (same slot, see
 *         Keyspace.coordReplayDedup)
 * ARGV[1] the ingest entry id, [2] now ms, [3] dedup window ms, [4] replay MAXLEN (approximate),
 *         [5] the level channel, [6] the envelope JSON, [7..] the replay entry's fields
 * Returns 1 when fanned out, 0 when this ingest id was already fanned out (a redelivery after a
 * crash between the fan-out and the ack), so replay never holds an envelope twice.
 */
export const FANOUT_LUA = `
if redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[1]) == 0 then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (tonumber(ARGV[2]) - tonumber(ARGV[3])))
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', unpack(fields))
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
`;
const FANOUT_SHA = createHash('sha1').update(FANOUT_LUA).digest('hex');

/**
 * The replay entry: readable as is with `redis-cli XREVRANGE logs:stream:coord + - COUNT 20`
 * (level, msg and session first), and still a codec entry (`type coord-op v 0 data <json>`).
 */
export function replayFields(env: CoordOpEnvelope): string[] {
  return [
    'level',
    env.level,
    'msg',
    env.msg,
    'session',
    env.fields.session,
    'type',
    'coord-op',
    'v',
    '0',
    'data',
    JSON.stringify(env),
  ];
}

/** Redis side of the fan-out: pub/sub by level and the capped replay stream, in one script. */
export class FanoutRepository {
  constructor(
    private readonly redis: Redis,
    private readonly keyspace: Keyspace,
    private readonly options: { replayMaxLen: number; dedupWindowMs: number },
  ) {}

  /** Publishes and appends `env` for ingest entry `entryId`; false when it was already done. */
  async fanout(env: CoordOpEnvelope, entryId: string): Promise<boolean> {
    const json = JSON.stringify(env);
    const args = [
      entryId,
      String(Date.now()),
      String(this.options.dedupWindowMs),
      String(this.options.replayMaxLen),
      this.keyspace.coordLevelChannel(env.level),
      json,
      ...replayFields(env),
    ];
    const keys = [this.keyspace.coordReplay, this.keyspace.coordReplayDedup];
    let r: unknown;
    try {
      r = await this.redis.evalsha(FANOUT_SHA, keys.length, ...keys, ...args);
    } catch (err) {
      if (!/NOSCRIPT/.test((err as Error).message)) throw err;
      r = await this.redis.eval(FANOUT_LUA, keys.length, ...keys, ...args);
    }
    return Number(r) === 1;
  }
}
