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
 * entry in one script (commands/observeMany-1+.lua), one call per batch.
 */
@Injectable()
export class ObservationRepository {
  private readonly codec: EnvelopeCodec;
  private readonly observe: BoundCommand<(string | null)[]>;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(KEYSPACE) private readonly keyspace: Keyspace,
    @Inject(OBSERVATION_OPTIONS) private readonly options: ObservationRepositoryOptions,
  ) {
    this.codec = options.codec ?? new EnvelopeCodec();
    this.observe = bindCommand(redis, COMMANDS.observeMany);
  }

  /**
   * Puts the live-view envelope of coord event `(source, tx_id)` on the coord ingest stream unless
   * it is there already (same script, ingest-slot keys); returns whether it wrote.
   */
  async ingestOnce(source: string, txId: string, env: CoordOpEnvelope): Promise<boolean> {
    const [written] = await this.ingestMany([{ source, txId, env }]);
    if (written instanceof Error) throw written;
    return written;
  }

  /** Appends the observation unless `(source, tx_id)` was already observed; returns whether it wrote. */
  async recordOnce(observation: SentinelObservation): Promise<{ written: boolean; id: string | null }> {
    const [result] = await this.recordMany([observation]);
    if (result instanceof Error) throw result;
    return result;
  }

  /**
   * {@link ingestOnce} for several events in one script call (in order; every key shares the
   * ingest stream's hash tag, so it is one slot in a cluster too). One result per item, in order:
   * whether it wrote. A failed call rejects (every item of it is to be retried: the markers make
   * the retry write each envelope once).
   */
  async ingestMany(
    items: readonly { source: string; txId: string; env: CoordOpEnvelope }[],
  ): Promise<(boolean | Error)[]> {
    const ids = await this.observeBatch(
      this.keyspace.coordIngest,
      DEFAULT_INGEST_MAXLEN,
      items.map(({ source, txId, env }) => [
        this.keyspace.coordIngestFromEvent(source, txId),
        envelopeFields(env),
      ]),
    );
    return ids.map((id) => id !== null);
  }

  /**
   * {@link recordOnce} for several observations in one script call (in order; every key shares
   * the observations hash tag). One result per observation: whether it wrote and the entry id, or
   * the error of that observation alone (its encoding). A failed call rejects, as in ingestMany.
   */
  async recordMany(
    observations: readonly SentinelObservation[],
  ): Promise<({ written: boolean; id: string | null } | Error)[]> {
    const encoded = observations.map((o): [string, string[]] | Error => {
      try {
        return [this.keyspace.sentinelSeen(o.source, o.tx_id), this.codec.encode(Schemas.observation, o)];
      } catch (err) {
        return err as Error;
      }
    });
    const ids = await this.observeBatch(
      this.keyspace.sentinelObservations,
      this.options.maxLen,
      encoded.filter((e): e is [string, string[]] => !(e instanceof Error)),
    );
    let i = 0;
    return encoded.map((e) => {
      if (e instanceof Error) return e;
      const id = ids[i++];
      return { written: id !== null, id };
    });
  }

  /** One script call for `items` ([marker, stream fields] each); resolves to each item's entry id or null. */
  private async observeBatch(
    stream: string,
    maxLen: number,
    items: readonly [string, string[]][],
  ): Promise<(string | null)[]> {
    if (!items.length) return [];
    const width = items[0][1].length;
    const keys = [stream];
    const args: (string | number)[] = [this.options.dedupTtlMs, maxLen, width];
    for (const [marker, fields] of items) {
      // Every encoder here writes the same fields (type, v, data); the script relies on it.
      if (fields.length !== width)
        throw new Error(`stream fields differ in count (${fields.length} vs ${width})`);
      keys.push(marker);
      for (const f of fields) args.push(f);
    }
    const ids = await this.observe(keys, args);
    if (!Array.isArray(ids) || ids.length !== items.length) {
      throw new Error(
        `observeMany returned ${Array.isArray(ids) ? ids.length : typeof ids} replies for ${items.length} items`,
      );
    }
    return ids.map((id) => id ?? null);
  }
}
