import { Inject, Injectable } from '@nestjs/common';
import { InvalidError, Schemas } from '@coordbus/envelope';
import { PartialBatchError, type StreamBatch } from '@coordbus/redis-streams';
import { ARCHIVE_STORE, ArchiveRow, ArchiveRowError, ArchiveStore } from '../store/archive-store';
import { ArchiveMetrics } from '../metrics/archive-metrics';
import { STREAM_REFS } from '../tokens';
import { StreamRef, defaultSchemaKey, toArchiveRow } from './row-mapper';

/**
 * Turns a batch of entries into archive rows and inserts them in one transaction. The promise
 * resolves only after the commit, and the transport acks the batch only then.
 *
 * A row the store refuses (ArchiveRowError: the data's fault) never takes its batch down: the
 * batch is split around it (at the row the store names, else in halves) until every other row is
 * committed, and the handler rejects with a PartialBatchError naming only the refused entries,
 * which the transport dead-letters with the store's reason while acking the rest. Any other
 * failure (the database down or failing: UnavailableError) rejects the whole batch as is, to be
 * retried; the unique keys make every retry and every split safe.
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
        // The producer's own text when the DTO holds exactly what it says (saves a serialisation).
        data: e.text ?? JSON.stringify(e.data),
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
    const refused: { row: ArchiveRow; error: ArchiveRowError }[] = [];
    const inserted = await this.insertAround(rows, refused);
    stop();
    if (inserted) this.metrics.inserted.inc({ stream: ref.key }, inserted);
    const stored = rows.length - refused.length;
    if (stored > inserted) this.metrics.duplicates.inc({ stream: ref.key }, stored - inserted);
    if (refused.length) {
      throw new PartialBatchError(
        refused.map(({ row, error }) => ({
          id: row.entryId,
          error: new InvalidError(`the archive cannot store this entry: ${error.message}`),
        })),
      );
    }
    return inserted;
  }

  /** Inserts every row the store accepts; the refused ones are collected, not thrown. */
  private async insertAround(
    rows: ArchiveRow[],
    refused: { row: ArchiveRow; error: ArchiveRowError }[],
  ): Promise<number> {
    if (!rows.length) return 0;
    try {
      return await this.store.insertBatch(rows);
    } catch (err) {
      if (!(err instanceof ArchiveRowError)) throw err;
      if (rows.length === 1) {
        refused.push({ row: rows[0], error: err });
        return 0;
      }
      const at = err.index;
      if (at !== undefined && at >= 0 && at < rows.length) {
        refused.push({ row: rows[at], error: err });
        return (
          (await this.insertAround(rows.slice(0, at), refused)) +
          (await this.insertAround(rows.slice(at + 1), refused))
        );
      }
      const mid = rows.length >> 1;
      return (
        (await this.insertAround(rows.slice(0, mid), refused)) +
        (await this.insertAround(rows.slice(mid), refused))
      );
    }
  }
}
