import type Redis from 'ioredis';
import { EnvelopeCodec, Keyspace, Schemas, SentinelObservation } from '@coordbus/envelope';

/**
 * KEYS[1]  the "seen" marker of (source, tx_id)          (sentinel:{observations}:seen:...)
 * KEYS[2]  the observations stream                       (sentinel:{observations})
 * ARGV[1]  marker time-to-live in ms
 * ARGV[2]  approximate MAXLEN of the stream (safety cap)
 * ARGV[3..] the observation's encoded stream fields
 * Returns the new entry id, or false when the event was already observed (a duplicate).
 *
 * One script, so "marked seen" and "observation written" cannot come apart: a crash leaves
 * either both or neither, and of several replicas racing on one event exactly one writes.
 */
const OBSERVE_LUA = `
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
end
return false
`;

type ObserveFn = (
  seen: string,
  stream: string,
  ttlMs: number,
  maxLen: number,
  ...fields: string[]
) => Promise<string | null>;

export interface ObservationRepositoryOptions {
  dedupTtlMs: number;
  maxLen: number;
  codec?: EnvelopeCodec;
}

/** Writes observations to the observations stream, at most once per `(source, tx_id)`. */
export class ObservationRepository {
  private readonly codec: EnvelopeCodec;
  private readonly observe: ObserveFn;

  constructor(
    private readonly redis: Redis,
    private readonly keyspace: Keyspace,
    private readonly options: ObservationRepositoryOptions,
  ) {
    this.codec = options.codec ?? new EnvelopeCodec();
    if (!(redis as unknown as Record<string, unknown>).sentinelObserve) {
      redis.defineCommand('sentinelObserve', { numberOfKeys: 2, lua: OBSERVE_LUA });
    }
    const fn = (redis as unknown as { sentinelObserve: ObserveFn }).sentinelObserve;
    this.observe = fn.bind(redis);
  }

  /** Appends the observation unless `(source, tx_id)` was already observed; returns whether it wrote. */
  async recordOnce(observation: SentinelObservation): Promise<{ written: boolean; id: string | null }> {
    const fields = this.codec.encode(Schemas.observation, observation);
    const id = await this.observe(
      this.keyspace.sentinelSeen(observation.source, observation.tx_id),
      this.keyspace.sentinelObservations,
      this.options.dedupTtlMs,
      this.options.maxLen,
      ...fields,
    );
    return { written: id !== null, id };
  }
}
