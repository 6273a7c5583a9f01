import type Redis from 'ioredis';
import { CoordOpEnvelope, Keyspace } from '@coordbus/envelope';
import { bindCommand, BoundCommand } from '@coordbus/lua';
import { COMMANDS } from './commands';

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

/** Redis side of the fan-out: pub/sub by level and the capped replay stream, in one script (commands/fanout-2.lua). */
export class FanoutRepository {
  private readonly fanoutOnce: BoundCommand<number[]>;

  constructor(
    redis: Redis,
    private readonly keyspace: Keyspace,
    private readonly options: { replayMaxLen: number; dedupWindowMs: number },
  ) {
    this.fanoutOnce = bindCommand(redis, COMMANDS.fanout);
  }

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
    const flags = await this.fanoutOnce(keys, args);
    return flags.map((f) => Number(f) === 1);
  }
}
