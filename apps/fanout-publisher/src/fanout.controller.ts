import { Controller } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { CoordOpEnvelope, GROUPS } from '@coordbus/envelope';
import { StreamBatch, StreamBatchHandler } from '@coordbus/redis-streams';
import { FanoutService } from './fanout.service';

/**
 * Consumer group `fanout` on the coord ingest stream. The transport decodes and validates each
 * entry as a coord op envelope (invalid ones go to the dead-letter stream with the reason, and
 * never reach us) and hands us each read as one batch, in ingest order; it acks the batch once
 * `handle` resolves. One script run per batch: a handler per entry paid one round trip per
 * envelope, which bound the rate to round-trip latency whenever the CPU was contended.
 * Any number of replicas share the group.
 */
@Controller()
export class FanoutController {
  constructor(private readonly fanout: FanoutService) {}

  @StreamBatchHandler({ stream: 'coordIngest', group: GROUPS.fanout, schema: 'coordOp' })
  handle(@Payload() batch: StreamBatch<CoordOpEnvelope>): Promise<void> {
    return this.fanout.handle(batch.entries.map((e) => ({ id: e.id, env: e.data, text: e.text })));
  }
}
