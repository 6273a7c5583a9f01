import type Redis from 'ioredis';
import { CoordEvent, EnvelopeCodec, Keyspace, Schemas } from '@coordbus/envelope';
import { eventKey, SentinelEventSource } from './source';

export interface BridgeSourceOptions {
  /** Where events are published (the coord events stream of this keyspace). */
  keyspace: Keyspace;
  redis: Redis;
  codec?: EnvelopeCodec;
  /** Called with how many events one poll published (for metrics). */
  onPublished?: (count: number) => void;
}

/**
 * Wraps a source (normally `FsPollSource`) and publishes every event it returns to the coord
 * events stream before handing it on — seed 002's migration phases 2–3: a legacy file-based coord
 * feeds the bus, and subscribers of the stream see it like any other producer.
 *
 * Publishing happens before the caller handles (and so before the inner commit): a crash in
 * between republishes on the next poll with the same `(source, tx_id)`, which stream consumers
 * dedup. Nothing is published twice within one process.
 */
export class BridgeSource implements SentinelEventSource {
  private readonly codec: EnvelopeCodec;
  private readonly published = new Set<string>();

  constructor(
    private readonly inner: SentinelEventSource,
    private readonly options: BridgeSourceOptions,
  ) {
    this.codec = options.codec ?? new EnvelopeCodec();
  }

  get name(): string {
    return this.inner.name;
  }

  async poll(signal?: AbortSignal): Promise<CoordEvent[]> {
    const events = await this.inner.poll(signal);
    const fresh = events.filter((e) => !this.published.has(eventKey(e)));
    if (fresh.length) {
      const stream = this.options.keyspace.coordEvents;
      const pipeline = this.options.redis.pipeline();
      for (const e of fresh) pipeline.xadd(stream, '*', ...this.codec.encode(Schemas.coordEvent, e));
      const res = await pipeline.exec();
      const failed = res?.find(([err]) => err);
      if (!res || failed) throw failed?.[0] ?? new Error('bridge publish failed');
      for (const e of fresh) this.published.add(eventKey(e));
      this.options.onPublished?.(fresh.length);
    }
    return events;
  }

  async commit(events: readonly CoordEvent[]): Promise<void> {
    await this.inner.commit(events);
    for (const e of events) this.published.delete(eventKey(e));
  }

  backlog(): Promise<number | null> {
    return this.inner.backlog();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
