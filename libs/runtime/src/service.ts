import { DynamicModule, INestApplication, Module, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EnvelopeCodec } from '@coordbus/envelope';
import { RedisStreamsServer, RedisStreamsServerOptions } from '@coordbus/redis-streams';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import { BaseConfig, ConfigError } from './config';
import { ReadinessService } from './health';
import { createLogger, NestPinoLogger } from './logger';
import { collectProcessMetrics, metricsRegistry } from './metrics';
import { pingWithin, redisModeProblem } from './redis';
import { RuntimeModule } from './runtime.module';
import { REDIS } from './tokens';

export interface RunServiceOptions {
  config: BaseConfig;
  /** The service's own module (its controllers, providers, stream handlers). */
  module: Type | DynamicModule;
  /**
   * Connect the Redis Streams transport (consumer groups for every `@StreamHandler`); `true`
   * uses the defaults, an object overrides transport options. Omit for producer-only services.
   */
  transport?: boolean | Partial<RedisStreamsServerOptions>;
  /** Called after the app is listening, before the start line is logged. */
  onStarted?: (app: INestApplication) => void | Promise<void>;
}

@Module({})
class ServiceRootModule {}

/**
 * Boots a coordbus service: JSON logs, the HTTP listener (/healthz, /readyz, /metrics plus the
 * service's own controllers), the Redis Streams transport when asked, and a graceful stop on
 * SIGTERM/SIGINT (stop reading, finish in-flight work, flush acks, disconnect, exit 0).
 */
export async function runService(options: RunServiceOptions): Promise<INestApplication> {
  const { config } = options;
  // A REDIS_CLUSTER that does not match the server is a configuration error, not an outage.
  const mode = await redisModeProblem(config.redisUrl, config.redisCluster);
  if (mode) throw new ConfigError([mode]);
  const logger = createLogger(config.service, config.logLevel);
  collectProcessMetrics(config.service);
  const root: DynamicModule = {
    module: ServiceRootModule,
    imports: [RuntimeModule.forRoot(config, logger), options.module],
  };
  const app = await NestFactory.create(root, { logger: new NestPinoLogger(logger), abortOnError: false });
  const readiness = app.get(ReadinessService);
  const redis = app.get<Redis>(REDIS);
  readiness.register('redis', () => pingWithin(redis, 1000));

  if (options.transport) {
    const overrides = options.transport === true ? {} : options.transport;
    const server = new RedisStreamsServer({
      url: config.redisUrl,
      cluster: config.redisCluster,
      keyspace: config.keyspace,
      consumer: config.consumer,
      codec: new EnvelopeCodec({ maxBytes: config.maxEntryBytes }),
      registry: metricsRegistry,
      logger: new NestPinoLogger(logger.child({ component: 'redis-streams' })),
      ...config.streams,
      // Leave the process guard time to log and exit after the transport gives up draining.
      closeTimeoutMs: Math.max(100, config.shutdownTimeoutMs - 2000),
      ...overrides,
    });
    app.connectMicroservice({ strategy: server }, { inheritAppConfig: true });
    readiness.register('consumer-groups', () => server.readiness());
    await app.startAllMicroservices();
  }
  await app.listen(config.httpPort, config.httpHost);
  await options.onStarted?.(app);
  logger.info(
    { http: await app.getUrl(), namespace: config.namespace, consumer: config.consumer },
    `${config.service} started`,
  );
  installShutdown(app, config, logger);
  return app;
}

function installShutdown(app: INestApplication, config: BaseConfig, logger: Logger): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, `${config.service} stopping`);
    const guard = setTimeout(() => {
      logger.error(
        { timeoutMs: config.shutdownTimeoutMs },
        'graceful stop took too long (raise SHUTDOWN_TIMEOUT_MS)',
      );
      process.exit(1);
    }, config.shutdownTimeoutMs);
    guard.unref();
    app
      .close()
      .then(() => {
        logger.info(`${config.service} stopped`);
        logger.flush?.();
        process.exit(0);
      })
      .catch((err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(1);
      });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/**
 * Runs a service's `main`: a ConfigError prints its list of bad variables and exits 2; any
 * other start-up failure is logged as JSON and exits 1. Unhandled rejections are logged, never silent.
 */
export function runMain(main: () => Promise<unknown>, service = 'coordbus'): void {
  const logger = createLogger(service);
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));
  main().catch((err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`${service}: ${err.message}\n`);
      process.exit(2);
    }
    logger.fatal({ err }, `${service} failed to start`);
    logger.flush?.();
    process.exit(1);
  });
}
