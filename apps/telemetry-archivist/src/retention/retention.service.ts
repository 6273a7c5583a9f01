import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import type { Logger } from 'pino';
import { LOGGER } from '@coordbus/runtime';
import { ARCHIVE_STORE, ArchiveStore } from '../store/archive-store';
import { StreamRef } from '../ingest/row-mapper';
import { ArchiveMetrics } from '../metrics/archive-metrics';
import { ArchivistConfig } from '../config';
import { ruleFor } from './retention-policy';
import { ARCHIVIST_CONFIG, STREAM_REFS } from '../tokens';

/**
 * Applies ARCHIVIST_RETENTION every ARCHIVIST_RETENTION_INTERVAL (and once at start). Several
 * replicas sharing a PostgreSQL database may each run it: deletes are idempotent.
 */
@Injectable()
export class RetentionService implements OnApplicationBootstrap, OnModuleDestroy {
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;

  constructor(
    @Inject(ARCHIVE_STORE) private readonly store: ArchiveStore,
    @Inject(STREAM_REFS) private readonly refs: StreamRef[],
    @Inject(ARCHIVIST_CONFIG) private readonly config: ArchivistConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly metrics: ArchiveMetrics,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.retention.size) return;
    const tick = () => {
      if (!this.running) this.running = this.runOnce().finally(() => (this.running = undefined));
    };
    tick();
    this.timer = setInterval(tick, this.config.retentionIntervalMs);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass over every stream with a rule; resolves to the rows deleted. Errors are logged, never thrown. */
  async runOnce(nowMs = Date.now()): Promise<number> {
    let total = 0;
    for (const ref of this.refs) {
      const rule = ruleFor(this.config.retention, ref.key);
      if (!rule) continue;
      try {
        const n = await this.store.applyRetention(ref.name, rule, nowMs);
        if (n) {
          this.metrics.retentionDeleted.inc({ stream: ref.key }, n);
          this.logger.info({ stream: ref.key, deleted: n, rule }, 'retention deleted archived rows');
        }
        total += n;
      } catch (err) {
        this.logger.error({ err, stream: ref.key }, 'retention pass failed; will retry next interval');
      }
    }
    return total;
  }
}
