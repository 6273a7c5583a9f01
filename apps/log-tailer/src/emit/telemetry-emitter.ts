import { EnvelopeCodec, Keyspace, Schemas, TelemetryEvent, UnavailableError } from '@coordbus/envelope';
import type Redis from 'ioredis';
import type { Checkpoint } from '../follow/file-identity';
import { bindCommand, BoundCommand } from '@coordbus/lua';
import { COMMANDS } from '../commands';

/** Where a checkpoint lives: one hash per source, one field per followed path. */
export interface CheckpointRef {
  source: string;
  path: string;
}

/**
 * The tailer's only Redis adapter. Durable first: a range's telemetry events and the checkpoint
 * past that range go to Redis in ONE Lua script (the checkpoint hash shares the telemetry
 * stream's hash tag), so a range is emitted exactly once even if the process dies at any point;
 * `telemetry.<event>` pub/sub follows, best effort, only after the stream write succeeded.
 */
export class TelemetryEmitter {
  /** commands/tailerCommit-2.lua */
  private readonly commitRange: BoundCommand<number>;

  constructor(
    private readonly redis: Redis,
    private readonly keyspace: Keyspace,
    private readonly codec: EnvelopeCodec,
    private readonly streamMaxLen: number,
  ) {
    this.commitRange = bindCommand(redis, COMMANDS.tailerCommit);
  }

  /** Encodes one event through the codec (validated like every entry); throws InvalidError / TooLargeError for a bad one. */
  encode(event: TelemetryEvent): string[] {
    return this.codec.encode(Schemas.telemetry, event);
  }

  async loadCheckpoint(ref: CheckpointRef): Promise<string | null> {
    return this.redis.hget(this.keyspace.tailerCheckpointKey(ref.source), ref.path);
  }

  /**
   * Appends the encoded events to the telemetry stream and writes the checkpoint, atomically
   * (one Lua script). Rejects with UnavailableError when Redis did not take it; then nothing of
   * the range was written and the caller retries the same range.
   */
  async commit(encoded: string[][], ref: CheckpointRef, checkpoint: Checkpoint): Promise<number> {
    const prefix = encoded.length
      ? encoded[0].slice(0, 5)
      : ['type', Schemas.telemetry.name, 'v', String(Schemas.telemetry.major), 'data'];
    const keys = [this.keyspace.telemetryEvents, this.keyspace.tailerCheckpointKey(ref.source)];
    const args = [
      ref.path,
      JSON.stringify(checkpoint),
      String(this.streamMaxLen),
      ...prefix,
      ...encoded.map((fields) => fields[5]),
    ];
    try {
      return Number(await this.commitRange(keys, args));
    } catch (err) {
      throw new UnavailableError(`telemetry commit failed: ${(err as Error).message}`);
    }
  }

  /** Best-effort live copy on `telemetry.<event>`; resolves with the first error, if any. */
  async publish(events: { event: string; fields: string[] }[]): Promise<Error | null> {
    if (!events.length) return null;
    const pipe = this.redis.pipeline();
    for (const e of events) pipe.publish(this.keyspace.telemetryChannel(e.event), e.fields[5]);
    try {
      const results = await pipe.exec();
      const failed = results?.find(([err]) => err);
      return failed ? (failed[0] as Error) : null;
    } catch (err) {
      return err as Error;
    }
  }
}
