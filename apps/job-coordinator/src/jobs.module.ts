import { DynamicModule, Module } from '@nestjs/common';
import type { JobsConfig } from './config';
import { CoordinatorService, JOBS_CONFIG } from './coordinator.service';

/** The job-coordinator capability: BullMQ worker, cancel listener, reconcile and retention. */
@Module({})
export class JobsModule {
  static forRoot(config: JobsConfig): DynamicModule {
    return {
      module: JobsModule,
      providers: [{ provide: JOBS_CONFIG, useValue: config }, CoordinatorService],
      exports: [CoordinatorService],
    };
  }
}
