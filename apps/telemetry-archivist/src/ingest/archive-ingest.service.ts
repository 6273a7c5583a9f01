import { Inject, Injectable } from '@nestjs/common';
import { Schemas } from '@coordbus/envelope';
import type { StreamBatch } from '@coordbus/redis-streams';
import { ARCHIVE_STORE, ArchiveRow, ArchiveStore } from '../store/archive-store';
import { ArchiveMetrics } from '../metrics/archive-metrics';
import { STREAM_REFS } from '../tokens';
import { StreamRef, defaultSchemaKey, toArchiveRow } from './row-mapper';

/**
 * Turns a batch of entries into archive rows and inserts them in one transaction. The promise
 * resolves only after the commit, and the transport acks the batch only then; a failed insert
 * rejects, so the whole batch is redelivered (and the unique keys make the retry safe).
 */
@Injectable()
export class ArchiveIngestService {
  private readonly byKey: Map<string, StreamRef>;

  constructor(
    @Inject(ARCHIVE_STORE) private readonly store: ArchiveStore,
    @Inject(STREAM_REFS) refs: StreamRef[],
    private readonly metrics: ArchiveMetrics,
  ) {
    this.byKey = new Map(refs.map((r) => [r.key, r]));
  }

  /** A batch of decoded, validated DTOs (the transport decoded them with the stream's schema). */
  async archive(key: string, batch: StreamBatch<unknown>): Promise<number> {
    const ref = this.ref(key);
    const schema = Schemas[defaultSchemaKey(ref)];
    const rows = batch.entries.map((e) =>
      toArchiveRow(ref, e.id, {
        type: schema.name,
        version: schema.major,
        data: JSON.stringify(e.data),
        payload: e.data,
      }),
    );
    return this.insert(ref, rows);
  }

  private ref(key: string): StreamRef {
    const ref = this.byKey.get(key);
    if (!ref) throw new Error(`stream ${key} is not archived`);
    return ref;
  }

  private async insert(ref: StreamRef, rows: ArchiveRow[]): Promise<number> {
    const stop = this.metrics.batchSeconds.startTimer({ store: this.store.kind });
    const inserted = await this.store.insertBatch(rows);
    stop();
    if (inserted) this.metrics.inserted.inc({ stream: ref.key }, inserted);
    if (rows.length > inserted) this.metrics.duplicates.inc({ stream: ref.key }, rows.length - inserted);
    return inserted;
  }
}
