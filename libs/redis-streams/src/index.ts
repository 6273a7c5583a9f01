/**
 * `@coordbus/redis-streams`: the Redis Streams transport every coordbus service uses.
 *
 * Consumer side: `RedisStreamsServer` (a Nest `CustomTransportStrategy`) plus the
 * `@StreamHandler` / `@StreamBatchHandler` decorators and `RedisStreamsContext`.
 * Producers write their entries inside the Lua script or MULTI that writes their state (see
 * ARCHITECTURE.md), so there is no ClientProxy. `ConsumerGroup` holds every group command.
 * Trimming: `trimAckAware` / `StreamTrimmer`. Metrics: `coordbus_stream_*` on a prom-client registry.
 */
import 'reflect-metadata';
export * from './options';
export * from './events';
export * from './context';
export * from './decorators';
export * from './exception-filter';
export * from './metrics';
export * from './trimmer';
export * from './connection';
export { RedisStreamsServer, REDIS_STREAMS_TRANSPORT } from './server';
export type { LoopDefinition } from './loop';
export * from './consumer-group';
export * from './consumer-sweep';
export * from './dead-letters';
