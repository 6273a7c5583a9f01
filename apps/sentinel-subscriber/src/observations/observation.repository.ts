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
    const id = await this.observe(...this.recordArgs(observation));
    return { written: id !== null, id };
  }

  /**
   * {@link ingestOnce} for several events in one round trip (one pipeline: the same script per
   * event, in order). One result per item, in order: whether it wrote, or the error of that item.
   */
  ingestMany(
    items: readonly { source: string; txId: string; env: CoordOpEnvelope }[],
  ): Promise<(boolean | Error)[]> {
    return this.pipelined(
      items.map(({ source, txId, env }) => [
        [this.keyspace.coordIngestFromEvent(source, txId), this.keyspace.coordIngest],
        [this.options.dedupTtlMs, DEFAULT_INGEST_MAXLEN, ...envelopeFields(env)],
      ]),
      (id) => id !== null,
    );
  }

  /**
   * {@link recordOnce} for several observations in one round trip (one pipeline, in order; every
   * key shares the observations hash tag, so it is one slot in a cluster too). One result per
   * observation: whether it wrote and the entry id, or the error of that observation alone (its
   * encoding or its script).
   */
  recordMany(
    observations: readonly SentinelObservation[],
  ): Promise<({ written: boolean; id: string | null } | Error)[]> {
    return this.pipelined(
      observations.map((o) => {
        try {
          return this.recordArgs(o);
        } catch (err) {
          return err as Error;
        }
      }),
      (id) => ({ written: id !== null, id }),
    );
  }

  private recordArgs(observation: SentinelObservation): [string[], (string | number)[]] {
    const fields = this.codec.encode(Schemas.observation, observation);
    return [
      [this.keyspace.sentinelSeen(observation.source, observation.tx_id), this.keyspace.sentinelObservations],
      [this.options.dedupTtlMs, this.options.maxLen, ...fields],
    ];
  }

  /** Runs the observe script once per call (an Error stands for a call that could not be built) in one pipeline. */
  private async pipelined<R>(
    calls: ([string[], (string | number)[]] | Error)[],
    result: (id: string | null) => R,
  ): Promise<(R | Error)[]> {
    const sent = calls.filter((c): c is [string[], (string | number)[]] => !(c instanceof Error));
    let replies: [Error | null, unknown][] = [];
    if (sent.length) {
      const pipeline = this.redis.pipeline() as unknown as Record<string, (...a: unknown[]) => void> & {
        exec(): Promise<[Error | null, unknown][] | null>;
      };
      for (const [keys, args] of sent) pipeline[COMMANDS.observeOnce.name](...keys, ...args);
      replies = (await pipeline.exec()) ?? [];
    }
    let i = 0;
    return calls.map((c) => {
      if (c instanceof Error) return c;
      const [err, id] = replies[i++] ?? [new Error('no reply from the pipeline'), null];
      return err ?? result((id as string | null) ?? null);
    });
  }
}
