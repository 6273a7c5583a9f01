import { createHash } from 'node:crypto';
import type Redis from 'ioredis';
import { CoordOpEnvelope, Keyspace } from '@coordbus/envelope';

/**
 * Fans a batch of envelopes out, each exactly once per ingest entry id.
 *
 * KEYS[1] the replay stream (`logs:stream:coord`), KEYS[2] the dedup zset (same slot, see
 *         Keyspace.coordReplayDedup)
 * ARGV[1] now ms, [2] dedup window ms, [3] replay MAXLEN (approximate), [4] the channel prefix
 *         (`<ns>:logs.coord.`), then per envelope 5 values: ingest entry id, level, msg, session,
 *         envelope JSON
 * Returns one flag per envelope, 1 when fanned out, 0 when its id was already in the dedup set (a
 * redelivery after a crash between the fan-out and the ack): replay never holds an envelope twice.
 */
export const FANOUT_LUA = `
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (tonumber(ARGV[1]) - tonumber(ARGV[2])))
local done = {}
for i = 5, #ARGV, 5 do
  local new = redis.call('ZADD', KEYS[2], 'NX', ARGV[1], ARGV[i])
  done[#done + 1] = new
  if new == 1 then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'level', ARGV[i + 1], 'msg', ARGV[i + 2],
      'session', ARGV[i + 3], 'type', 'coord-op', 'v', '0', 'data', ARGV[i + 4])
    redis.call('PUBLISH', ARGV[4] .. ARGV[i + 1], ARGV[i + 4])
  end
end
return done
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

  /**
   * Publishes each envelope to `logs.coord.<level>` and appends it to the replay stream, in ingest
   * order, in one script run; returns, per envelope, whether it was new (not fanned out before).
   */
  async fanout(batch: Array<{ id: string; env: CoordOpEnvelope }>): Promise<boolean[]> {
    if (!batch.length) return [];
    const channelPrefix = this.keyspace.coordLevelChannel('info').slice(0, -'info'.length);
    const args: string[] = [
      String(Date.now()),
      String(this.options.dedupWindowMs),
      String(this.options.replayMaxLen),
      channelPrefix,
    ];
    for (const { id, env } of batch)
      args.push(id, env.level, env.msg, env.fields.session, JSON.stringify(env));
    const keys = [this.keyspace.coordReplay, this.keyspace.coordReplayDedup];
    let flags: number[];
    try {
      flags = (await this.redis.evalsha(FANOUT_SHA, keys.length, ...keys, ...args)) as number[];
    } catch (err) {
      if (!/NOSCRIPT/.test((err as Error).message)) throw err;
      flags = (await this.redis.eval(FANOUT_LUA, keys.length, ...keys, ...args)) as number[];
    }
    return flags.map((f) => Number(f) === 1);
  }
}
