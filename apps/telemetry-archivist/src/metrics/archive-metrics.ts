import { Inject, Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { METRICS_REGISTRY } from '@coordbus/runtime';
import { ARCHIVE_STORE, ArchiveStats, ArchiveStore } from '../store/archive-store';
import { StreamRef } from '../ingest/row-mapper';
import { STREAM_REFS } from '../tokens';

/**
 * Stats are recomputed at most this often: COUNT(*) per stream scans an index, and on SQLite it
 * runs on the event loop, so a big archive scraped often would stall ingest.
 */
const STATS_MAX_AGE_MS = 30_000;

/** The archivist's Prometheus metrics; the database gauges are read from the store at scrape time. */
@Injectable()
export class ArchiveMetrics {
  readonly inserted: Counter<'stream'>;
  readonly duplicates: Counter<'stream'>;
  readonly retentionDeleted: Counter<'stream'>;
  readonly batchSeconds: Histogram<'store'>;
  private cached?: { at: number; stats: Promise<ArchiveStats> };

  constructor(
    @Inject(METRICS_REGISTRY) registry: Registry,
    @Inject(ARCHIVE_STORE) private readonly store: ArchiveStore,
    @Inject(STREAM_REFS) private readonly refs: StreamRef[],
  ) {
    const registers = [registry];
    this.inserted = new Counter({
      name: 'coordbus_archive_inserted_total',
      help: 'Rows inserted into the archive, by stream',
      labelNames: ['stream'],
      registers,
    });
    this.duplicates = new Counter({
      name: 'coordbus_archive_duplicates_total',
      help: 'Entries skipped because the archive already held them (redelivery, reclaim, replay)',
      labelNames: ['stream'],
      registers,
    });
    this.retentionDeleted = new Counter({
      name: 'coordbus_archive_retention_deleted_total',
      help: 'Rows deleted by retention, by stream',
      labelNames: ['stream'],
      registers,
    });
    this.batchSeconds = new Histogram({
      name: 'coordbus_archive_batch_seconds',
      help: 'Time to insert and commit one batch',
      labelNames: ['store'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    const stats = () => this.stats();
    const keyOf = new Map(this.refs.map((r) => [r.name, r.key]));
    const allRefs = this.refs;
    new Gauge({
      name: 'coordbus_archive_db_size_bytes',
      help: 'Size of the archive database on disk (SQLite file + WAL, or the PostgreSQL tables)',
      registers,
      async collect() {
        this.set((await stats()).sizeBytes);
      },
    });
    new Gauge({
      name: 'coordbus_archive_rows',
      help: 'Rows in the archive, by stream',
      labelNames: ['stream'],
      registers,
      async collect() {
        const { rowsByStream } = await stats();
        for (const r of allRefs) this.set({ stream: r.key }, 0);
        for (const [name, n] of Object.entries(rowsByStream))
          this.set({ stream: keyOf.get(name) ?? name }, n);
      },
    });
  }

  private stats(): Promise<ArchiveStats> {
    const now = Date.now();
    if (!this.cached || now - this.cached.at > STATS_MAX_AGE_MS) {
      const stats = this.store.stats();
      // A failed read must not stick: the next scrape tries again.
      stats.catch(() => (this.cached = undefined));
      this.cached = { at: now, stats };
    }
    return this.cached.stats;
  }
}
