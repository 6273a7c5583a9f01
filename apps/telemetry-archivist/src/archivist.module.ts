import { DynamicModule, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { KEYSPACE, ReadinessService } from '@coordbus/runtime';
import type { Keyspace } from '@coordbus/envelope';
import { ArchivistConfig } from './config';
import { ArchiveIngestController, RawArchiveIngestController } from './ingest/archive-ingest.controller';
import { ArchiveIngestService } from './ingest/archive-ingest.service';
import { archivedStreamRefs } from './ingest/row-mapper';
import { ArchiveMetrics } from './metrics/archive-metrics';
import { ArchiveQueryController } from './query/archive-query.controller';
import { ArchiveQueryService } from './query/archive-query.service';
import { RetentionService } from './retention/retention.service';
import { ARCHIVE_STORE, ArchiveStore } from './store/archive-store';
import { createArchiveStore } from './store/store-factory';
import { ARCHIVIST_CONFIG, STREAM_REFS } from './tokens';

/** Closes the database after the transport has stopped and flushed its acks (shutdown hooks run last). */
@Injectable()
class StoreLifecycle implements OnApplicationShutdown {
  constructor(
    @Inject(ARCHIVE_STORE) private readonly store: ArchiveStore,
    readiness: ReadinessService,
  ) {
    readiness.register('archive-store', async () => {
      await this.store.schemaVersion();
      return true;
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
  }
}

/** The telemetry archivist: stream ingest, the store, retention and the query API. */
@Module({})
export class ArchivistModule {
  static forRoot(config: ArchivistConfig): DynamicModule {
    return {
      module: ArchivistModule,
      controllers: [
        config.validate ? ArchiveIngestController : RawArchiveIngestController,
        ArchiveQueryController,
      ],
      providers: [
        { provide: ARCHIVIST_CONFIG, useValue: config },
        {
          provide: STREAM_REFS,
          inject: [KEYSPACE],
          useFactory: (keyspace: Keyspace) => archivedStreamRefs(keyspace),
        },
        {
          provide: ARCHIVE_STORE,
          useFactory: async () => {
            const store = createArchiveStore(config);
            await store.open();
            return store;
          },
        },
        StoreLifecycle,
        ArchiveMetrics,
        ArchiveIngestService,
        ArchiveQueryService,
        RetentionService,
      ],
    };
  }
}
