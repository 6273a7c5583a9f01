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

/**
 * One envelope to fan out: its ingest entry id, the validated DTO, and, when the codec vouches
 * for it (`StreamBatchEntry.text`: the entry's `data` text holds exactly what the DTO holds), that
 * text, which is then what goes out instead of `JSON.stringify(env)` (the same JSON value).
 */
export interface FanoutItem {
  id: string;
  env: CoordOpEnvelope;
  text?: string;
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
   * An item's `text` is sent as it is: serialising the DTO again cost the publisher about a
   * microsecond per envelope, and the text the codec vouches for is the same JSON value.
   */
  async fanout(batch: readonly FanoutItem[]): Promise<boolean[]> {
    if (!batch.length) return [];
    const channelPrefix = this.keyspace.coordLevelChannel('info').slice(0, -'info'.length);
    const args: string[] = [
      String(Date.now()),
      String(this.options.dedupWindowMs),
      String(this.options.replayMaxLen),
      channelPrefix,
    ];
    for (const { id, env, text } of batch)
      args.push(id, env.level, env.msg, env.fields.session, text ?? JSON.stringify(env));
    const keys = [this.keyspace.coordReplay, this.keyspace.coordReplayDedup];
    const flags = await this.fanoutOnce(keys, args);
    return flags.map((f) => Number(f) === 1);
  }
}
