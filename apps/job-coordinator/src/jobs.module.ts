import { DynamicModule, Module } from '@nestjs/common';
import type Redis from 'ioredis';
import { EnvelopeCodec, Keyspace } from '@coordbus/envelope';
import { CANCEL_BUS, CancelBus, JOB_RUNNER, JOB_STORE, JobStore, RunnerIdentity } from '@coordbus/jobs';
import { BASE_CONFIG, BaseConfig, createRedis, KEYSPACE, REDIS } from '@coordbus/runtime';
import type { JobsConfig } from './config';
import { BULL_REDIS, CoordinatorService, JOBS_CONFIG } from './coordinator.service';

/** The job-coordinator capability: BullMQ worker, cancel listener, reconcile and retention. */
@Module({})
export class JobsModule {
  static forRoot(config: JobsConfig): DynamicModule {
    return {
      module: JobsModule,
      providers: [
        { provide: JOBS_CONFIG, useValue: config },
        // The job classes live in libs/jobs without Nest (the CLI builds them too): provided here.
        {
          provide: JOB_STORE,
          inject: [REDIS, KEYSPACE, BASE_CONFIG],
          useFactory: (redis: Redis, keyspace: Keyspace, base: BaseConfig) =>
            new JobStore(redis, keyspace, new EnvelopeCodec({ maxBytes: base.maxEntryBytes }), {
              logMaxLen: config.logMaxLen,
            }),
        },
        {
          provide: CANCEL_BUS,
          inject: [REDIS, KEYSPACE, JOB_STORE],
          useFactory: (redis: Redis, keyspace: Keyspace, store: JobStore) =>
            new CancelBus(redis, keyspace, store),
        },
        { provide: JOB_RUNNER, useFactory: () => new RunnerIdentity('replica') },
        {
          provide: BULL_REDIS,
          inject: [BASE_CONFIG],
          useFactory: (base: BaseConfig) =>
            createRedis(base.redisUrl, {
              name: 'job-coordinator:bull',
              maxRetriesPerRequest: null,
              cluster: base.redisCluster,
            }),
        },
        CoordinatorService,
      ],
      exports: [CoordinatorService],
    };
  }
}
