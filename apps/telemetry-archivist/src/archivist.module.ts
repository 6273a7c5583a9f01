import { DynamicModule, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { KEYSPACE, LOGGER, ReadinessService, isLoopbackHost } from '@coordbus/runtime';
import type { Logger } from 'pino';
import type { Keyspace } from '@coordbus/envelope';
import { AccessGuard } from './access/access.guard';
import { AccessPolicy } from './access/access-policy';
import { ArchivistConfig } from './config';
import { ArchiveIngestController } from './ingest/archive-ingest.controller';
import { ArchiveIngestService } from './ingest/archive-ingest.service';
import { archivedStreamRefs } from './ingest/row-mapper';
import { ArchiveMetrics } from './metrics/archive-metrics';
import { ConsoleActionsService } from './console/console-actions.service';
import {
  ConsoleApiController,
  ConsoleLoginController,
  ConsolePageController,
} from './console/console.controller';
import { ConsoleReadService } from './console/console-read.service';
import { ConsoleRedis } from './console/console-redis';
import { DEFAULT_LIVE_FEED_OPTIONS, LIVE_FEED_OPTIONS, LiveFeed } from './console/live-feed.service';
import {
  DEFAULT_STREAM_RATES_OPTIONS,
  STREAM_RATES_OPTIONS,
  StreamRates,
} from './console/stream-rates.service';
import { ArchiveQueryController } from './query/archive-query.controller';
import { ArchiveQueryService } from './query/archive-query.service';
import { ApiIndex, ApiIndexController } from './query/api-index';
import { RetentionService } from './retention/retention.service';
import { ARCHIVE_STORE, ArchiveStore } from './store/archive-store';
import { createArchiveStore } from './store/store-factory';
import { ACCESS_POLICY, ARCHIVIST_CONFIG, STREAM_REFS } from './tokens';

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

/** Says at start what the API door is (never the tokens themselves). */
@Injectable()
class AccessNotice {
  constructor(@Inject(ACCESS_POLICY) policy: AccessPolicy, @Inject(LOGGER) logger: Logger) {
    const access = {
      reads: policy.readsNeedToken ? 'token' : 'open (loopback)',
      actions: policy.actionsEnabled ? 'operator token' : 'disabled',
    };
    if (policy.readsNeedToken && !policy.hasReadToken) {
      logger.warn(
        access,
        'HTTP_HOST is not loopback and COORDBUS_API_TOKEN is not set: /v1 and the console refuse every read',
      );
    } else {
      logger.info(access, 'API access');
    }
  }
}

/** The telemetry archivist: stream ingest, the store, retention and the query API. */
@Module({})
export class ArchivistModule {
  static forRoot(config: ArchivistConfig): DynamicModule {
    return {
      module: ArchivistModule,
      imports: [DiscoveryModule],
      controllers: [
        ArchiveIngestController,
        ArchiveQueryController,
        ApiIndexController,
        ConsolePageController,
        ConsoleLoginController,
        ConsoleApiController,
      ],
      providers: [
        { provide: ARCHIVIST_CONFIG, useValue: config },
        {
          provide: ACCESS_POLICY,
          useValue: new AccessPolicy({
            apiToken: config.apiToken,
            operatorToken: config.operatorToken,
            loopback: isLoopbackHost(config.httpHost),
          }),
        },
        AccessGuard,
        AccessNotice,
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
        ApiIndex,
        RetentionService,
        ConsoleRedis,
        {
          provide: LIVE_FEED_OPTIONS,
          useValue: { ...DEFAULT_LIVE_FEED_OPTIONS, pollMs: config.consolePollMs },
        },
        LiveFeed,
        { provide: STREAM_RATES_OPTIONS, useValue: DEFAULT_STREAM_RATES_OPTIONS },
        StreamRates,
        ConsoleReadService,
        ConsoleActionsService,
      ],
    };
  }
}
