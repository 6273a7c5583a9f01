import {
  DynamicModule,
  Inject,
  Injectable,
  Module,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { Keyspace } from '@coordbus/envelope';
import { StreamTrimmer } from '@coordbus/redis-streams';
import { KEYSPACE, LOGGER, METRICS_REGISTRY, REDIS } from '@coordbus/runtime';
import { FanoutConfig } from './config';
import { FanoutController } from './fanout.controller';
import { FanoutRepository } from './fanout.repository';
import { FanoutService } from './fanout.service';

/** Trims the ingest stream below what every consumer group (fanout, archivist) has acked, with a hard cap. */
@Injectable()
class IngestTrimmer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly trimmer: StreamTrimmer;
  constructor(
    @Inject(REDIS) redis: Redis,
    @Inject(KEYSPACE) keyspace: Keyspace,
    @Inject(LOGGER) logger: Logger,
    @Inject(METRICS_REGISTRY) registry: Registry,
    @Inject('FANOUT_CONFIG') config: FanoutConfig,
  ) {
    const log = logger.child({ component: 'trimmer' });
    this.trimmer = new StreamTrimmer(redis, {
      streams: [{ stream: keyspace.coordIngest, hardCap: config.ingestHardCap, approximate: true }],
      intervalMs: config.trimIntervalMs,
      registry,
      logger: { log: (m) => log.info(m), warn: (m) => log.warn(m), error: (m) => log.error(m) },
    });
  }
  onApplicationBootstrap(): void {
    this.trimmer.start();
  }
  async onApplicationShutdown(): Promise<void> {
    await this.trimmer.stop();
  }
}

@Module({})
export class FanoutModule {
  static forRoot(config: FanoutConfig): DynamicModule {
    return {
      module: FanoutModule,
      controllers: [FanoutController],
      providers: [
        { provide: 'FANOUT_CONFIG', useValue: config },
        {
          provide: FanoutRepository,
          inject: [REDIS, KEYSPACE],
          useFactory: (redis: Redis, keyspace: Keyspace) =>
            new FanoutRepository(redis, keyspace, {
              replayMaxLen: config.replayMaxLen,
              dedupWindowMs: config.dedupWindowMs,
            }),
        },
        {
          provide: FanoutService,
          inject: [FanoutRepository, METRICS_REGISTRY],
          useFactory: (repo: FanoutRepository, registry: Registry) => new FanoutService(repo, registry),
        },
        IngestTrimmer,
      ],
    };
  }
}
