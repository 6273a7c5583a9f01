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
import { CoordStore, FileMirror } from '@coordbus/coord';
import { EnvelopeCodec, Keyspace } from '@coordbus/envelope';
import { BridgeSource, FsPollSource, SentinelEventSource, StreamSource } from '@coordbus/event-source';
import { streamMetrics } from '@coordbus/redis-streams';
import { createRedis, KEYSPACE, LOGGER, metricsRegistry, ReadinessService, REDIS } from '@coordbus/runtime';
import { SentinelConfig } from './config';
import { CullService, SessionEvictor } from './cull.service';
import { SentinelMetrics } from './metrics';
import { ObservationRepository, ObservationRepositoryOptions } from './observations/observation.repository';
import { SentinelLoop, SentinelLoopOptions } from './sentinel.loop';
import { SentinelService } from './sentinel.service';
import {
  EVENT_SOURCE,
  LOOP_OPTIONS,
  OBSERVATION_OPTIONS,
  SENTINEL_CONFIG,
  SESSION_EVICTOR,
  SESSION_TTL_SEED_MS,
  SOURCE_REDIS,
} from './tokens';

export { EVENT_SOURCE, SENTINEL_CONFIG } from './tokens';

/** Builds the configured event source: the adapter is the only place that knows files or streams. */
export function createEventSource(
  config: SentinelConfig,
  deps: {
    keyspace: Keyspace;
    sourceRedis: Redis;
    commandRedis: Redis;
    metrics: SentinelMetrics;
    logger: Logger;
  },
): SentinelEventSource {
  const codec = new EnvelopeCodec({ maxBytes: config.base.maxEntryBytes });
  if (config.source === 'fs-poll') {
    const fs = new FsPollSource({
      root: config.coordRoot!,
      maxBatch: config.maxBatch,
      sessionTtlMs: config.sessionTtlMs,
      statePath: config.fsStatePath,
      decodeResource: (dir) => {
        try {
          return decodeURIComponent(dir);
        } catch {
          return dir;
        }
      },
      onMalformed: (path, reason) => {
        deps.metrics.malformedFiles.inc();
        deps.logger.debug(
          { path, reason },
          'skipped a half-written or malformed coord file; retrying next tick',
        );
      },
    });
    if (!config.bridge) return fs;
    return new BridgeSource(fs, {
      keyspace: deps.keyspace,
      redis: deps.commandRedis,
      codec,
      onPublished: (n) => deps.metrics.bridged.inc(n),
    });
  }
  return new StreamSource({
    redis: deps.sourceRedis,
    keyspace: deps.keyspace,
    consumer: config.base.consumer,
    maxBatch: config.maxBatch,
    blockMs: config.blockMs,
    claimIdleMs: config.claimIdleMs,
    maxDeliveries: config.maxDeliveries,
    codec,
    consumerIdleRemoveMs: config.base.streams.consumerIdleRemoveMs,
    metrics: streamMetrics(metricsRegistry),
    onConsumersRemoved: (consumers) =>
      deps.logger.info(
        { consumers, idleMs: config.base.streams.consumerIdleRemoveMs },
        'removed idle consumers from the sentinel group',
      ),
    onDeadLetter: (entry) => {
      deps.metrics.deadLetters.inc({ reason: entry.error_code });
      deps.logger.warn(
        { entry_id: entry.entry_id, reason: entry.reason },
        'coord event moved to the dead-letter stream',
      );
    },
  });
}

/** Starts the poll loop and the cull pass with the app, and stops them (loop first) with it. */
@Injectable()
class SentinelRunner implements OnApplicationBootstrap, BeforeApplicationShutdown {
  constructor(
    @Inject(SENTINEL_CONFIG) private readonly config: SentinelConfig,
    private readonly loop: SentinelLoop,
    private readonly cull: CullService,
    @Inject(EVENT_SOURCE) private readonly source: SentinelEventSource,
    @Inject(SOURCE_REDIS) private readonly sourceRedis: Redis,
    readiness: ReadinessService,
  ) {
    const staleAfter = Math.max(10_000, 3 * (config.source === 'fs-poll' ? config.tickMs : config.blockMs));
    readiness.register('event-source', () =>
      Date.now() - this.loop.lastPollOkAt <= staleAfter
        ? true
        : `no successful ${this.source.name} poll in the last ${staleAfter} ms`,
    );
  }

  onApplicationBootstrap(): void {
    this.loop.start();
    // Seeded even when this replica does not cull; a failure is retried by the next cull pass.
    this.cull.seed().catch(() => undefined);
    if (this.config.cull) this.cull.start(this.config.cullIntervalMs, this.config.cullIntervalFollowsTtl);
  }

  /** Before the shared Redis connection closes (that happens in onApplicationShutdown). */
  async beforeApplicationShutdown(): Promise<void> {
    await this.cull.stop();
    await this.loop.stop();
    await this.source.close();
    await this.sourceRedis.quit().catch(() => this.sourceRedis.disconnect());
  }
}

@Module({})
export class SentinelModule {
  static forRoot(config: SentinelConfig): DynamicModule {
    return {
      module: SentinelModule,
      providers: [
        { provide: SENTINEL_CONFIG, useValue: config },
        {
          provide: OBSERVATION_OPTIONS,
          useValue: {
            dedupTtlMs: config.dedupTtlMs,
            maxLen: config.observationsMaxLen,
            codec: new EnvelopeCodec({ maxBytes: config.base.maxEntryBytes }),
          } satisfies ObservationRepositoryOptions,
        },
        {
          provide: LOOP_OPTIONS,
          useValue: {
            idleDelayMs: config.source === 'fs-poll' ? config.tickMs : 0,
            maxBatch: config.maxBatch,
          } satisfies SentinelLoopOptions,
        },
        // Only a deployment that sets COORD_SESSION_TTL seeds the stored TTL (CullService.seed).
        ...(config.sessionTtlSet ? [{ provide: SESSION_TTL_SEED_MS, useValue: config.sessionTtlMs }] : []),
        SentinelMetrics,
        ObservationRepository,
        SentinelService,
        SentinelLoop,
        CullService,
        // Adapters built from configuration: a second connection, the configured source, coord state.
        {
          provide: SOURCE_REDIS,
          useFactory: () =>
            createRedis(config.base.redisUrl, {
              name: `${config.base.service}:source`,
              cluster: config.base.redisCluster,
            }),
        },
        {
          provide: EVENT_SOURCE,
          inject: [KEYSPACE, SOURCE_REDIS, REDIS, SentinelMetrics, LOGGER],
          useFactory: (
            keyspace: Keyspace,
            sourceRedis: Redis,
            commandRedis: Redis,
            metrics: SentinelMetrics,
            logger: Logger,
          ) =>
            createEventSource(config, {
              keyspace,
              sourceRedis,
              commandRedis,
              metrics,
              logger: logger.child({ component: 'event-source' }),
            }),
        },
        {
          provide: SESSION_EVICTOR,
          inject: [REDIS, KEYSPACE, LOGGER],
          useFactory: (redis: Redis, keyspace: Keyspace, logger: Logger): SessionEvictor => {
            const log = logger.child({ component: 'cull' });
            // Culls dual-write the file layout too when COORD_ROOT is set, like every coord writer.
            return new CoordStore(redis, {
              keyspace,
              source: 'sentinel',
              mirror: config.coordRoot ? new FileMirror(config.coordRoot) : undefined,
              onMirrorError: (err) =>
                log.warn({ err }, 'coord file mirror write failed (Redis state is committed)'),
            });
          },
        },
        SentinelRunner,
      ],
    };
  }
}
