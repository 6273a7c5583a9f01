import { BaseRpcContext } from '@nestjs/microservices';

/** `[stream, entryId, deliveryCount, group, consumer]` */
export type RedisStreamsContextArgs = [string, string, number, string, string];

/**
 * What a `@StreamHandler` learns about the entry it handles, via `@Ctx()`. For a
 * `@StreamBatchHandler` the entry id is the last id of the batch and the delivery count the highest.
 */
export class RedisStreamsContext extends BaseRpcContext<RedisStreamsContextArgs> {
  constructor(args: RedisStreamsContextArgs) {
    super(args);
  }

  /** The full stream name (namespace applied). */
  getStream(): string {
    return this.args[0];
  }

  /** The stream entry id (`<ms>-<seq>`): a natural idempotency key. */
  getEntryId(): string {
    return this.args[1];
  }

  /** 1 on first delivery; more when the entry was retried or reclaimed from a dead consumer. */
  getDeliveryCount(): number {
    return this.args[2];
  }

  getGroup(): string {
    return this.args[3];
  }

  getConsumer(): string {
    return this.args[4];
  }
}
