import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import { CoordOpEnvelope, EnvelopeCodec, Keyspace, Schemas, SentinelObservation } from '@coordbus/envelope';
import { DEFAULT_INGEST_MAXLEN, envelopeFields } from '@coordbus/coord';
import { bindCommand, BoundCommand } from '@coordbus/lua';
import { KEYSPACE, REDIS } from '@coordbus/runtime';
import { COMMANDS } from '../commands';
import { OBSERVATION_OPTIONS } from '../tokens';

export interface ObservationRepositoryOptions {
  dedupTtlMs: number;
  maxLen: number;
  codec?: EnvelopeCodec;
}

/**
 * Writes observations to the observations stream, at most once per `(source, tx_id)`: marker and
 * entry in one script (commands/observeOnce-2.lua).
 */
@Injectable()
export class ObservationRepository {
  private readonly codec: EnvelopeCodec;
  private readonly observe: BoundCommand<string | null>;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(KEYSPACE) private readonly keyspace: Keyspace,
    @Inject(OBSERVATION_OPTIONS) private readonly options: ObservationRepositoryOptions,
  ) {
    this.codec = options.codec ?? new EnvelopeCodec();
    this.observe = bindCommand(redis, COMMANDS.observeOnce);
  }

  /**
   * Puts the live-view envelope of coord event `(source, tx_id)` on the coord ingest stream unless
   * it is there already (same script, ingest-slot keys); returns whether it wrote.
   */
  async ingestOnce(source: string, txId: string, env: CoordOpEnvelope): Promise<boolean> {
    const id = await this.observe(
      [this.keyspace.coordIngestFromEvent(source, txId), this.keyspace.coordIngest],
      [this.options.dedupTtlMs, DEFAULT_INGEST_MAXLEN, ...envelopeFields(env)],
    );
    return id !== null;
  }

  /** Appends the observation unless `(source, tx_id)` was already observed; returns whether it wrote. */
  async recordOnce(observation: SentinelObservation): Promise<{ written: boolean; id: string | null }> {
    const fields = this.codec.encode(Schemas.observation, observation);
    const id = await this.observe(
      [this.keyspace.sentinelSeen(observation.source, observation.tx_id), this.keyspace.sentinelObservations],
      [this.options.dedupTtlMs, this.options.maxLen, ...fields],
    );
    return { written: id !== null, id };
  }
}
