import {
  BeforeApplicationShutdown,
  DynamicModule,
  Inject,
  Injectable,
  Module,
  OnApplicationBootstrap,
} from '@nestjs/common';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { EnvelopeCodec, Keyspace } from '@coordbus/envelope';
import {
  BASE_CONFIG,
  BaseConfig,
  KEYSPACE,
  LOGGER,
  METRICS_REGISTRY,
  ReadinessService,
  REDIS,
} from '@coordbus/runtime';
import type { TailerConfig } from './config/tailer-config';
import { TailerMetrics } from './metrics';
import { Tailer } from './tailer';
import { StoppedError } from './target-pipeline';

export const TAILER_CONFIG = Symbol('log-tailer:config');

/**
 * Runs the tailer inside the service shell: starts following once the app is up (so /healthz
 * answers while checkpoints load), flushes episodes and checkpoints before Redis is closed, and
 * exits non-zero when following dies so a supervisor restarts the process.
 */
@Injectable()
export class TailerService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  readonly tailer: Tailer;
  private startError: string | null = null;

  constructor(
    @Inject(TAILER_CONFIG) config: TailerConfig,
    @Inject(BASE_CONFIG) base: BaseConfig,
    @Inject(KEYSPACE) keyspace: Keyspace,
    @Inject(REDIS) redis: Redis,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS_REGISTRY) registry: Registry,
    readiness: ReadinessService,
  ) {
    this.tailer = new Tailer(config, {
      redis,
      keyspace,
      codec: new EnvelopeCodec({ maxBytes: base.maxEntryBytes }),
      logger: logger.child({ component: 'tailer' }),
      metrics: new TailerMetrics(registry),
      onFatal: (err) => this.die(err),
    });
    readiness.register('followers', () => this.startError ?? this.tailer.notReadyReason() ?? true);
  }

  onApplicationBootstrap(): void {
    this.tailer.start().catch((err: Error) => {
      // Stopped while still starting (e.g. SIGTERM while Redis was down): not a failure.
      if (err instanceof StoppedError) return;
      this.startError = err.message;
      this.die(err);
    });
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.tailer.stop();
  }

  private die(err: Error): void {
    this.logger.fatal(
      { err },
      'log-tailer cannot follow its files any more: exiting so a supervisor restarts it',
    );
    this.logger.flush?.();
    // Checkpoints (with any open episode) are already durable: nothing is lost by stopping here.
    process.exit(1);
  }
}

@Module({})
export class TailerModule {
  static forRoot(config: TailerConfig): DynamicModule {
    return { module: TailerModule, providers: [{ provide: TAILER_CONFIG, useValue: config }, TailerService] };
  }
}
