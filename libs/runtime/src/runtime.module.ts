import { DynamicModule, Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import type { BaseConfig } from './config';
import { HealthController, ReadinessService } from './health';
import { metricsRegistry } from './metrics';
import { createRedis } from './redis';
import { BASE_CONFIG, KEYSPACE, LOGGER, METRICS_REGISTRY, REDIS } from './tokens';

/** Closes the shared Redis connection after everything else has stopped using it. */
class RedisCloser implements OnApplicationShutdown {
  constructor(@Inject(REDIS) private readonly redis: Redis) {}
  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/**
 * Global providers every service gets: its config, keyspace, logger, a shared Redis connection,
 * the readiness registry and the metrics registry, plus /healthz, /readyz and /metrics.
 */
@Global()
@Module({})
export class RuntimeModule {
  static forRoot(config: BaseConfig, logger: Logger): DynamicModule {
    return {
      module: RuntimeModule,
      controllers: [HealthController],
      providers: [
        { provide: BASE_CONFIG, useValue: config },
        { provide: KEYSPACE, useValue: config.keyspace },
        { provide: LOGGER, useValue: logger },
        { provide: METRICS_REGISTRY, useValue: metricsRegistry },
        {
          provide: REDIS,
          useFactory: () =>
            createRedis(config.redisUrl, { name: `${config.service}:cmd`, cluster: config.redisCluster }),
        },
        ReadinessService,
        RedisCloser,
      ],
      exports: [BASE_CONFIG, KEYSPACE, LOGGER, METRICS_REGISTRY, REDIS, ReadinessService],
    };
  }
}
