import { Controller } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { CoordOpEnvelope, GROUPS } from '@coordbus/envelope';
import { StreamBatch, StreamBatchHandler } from '@coordbus/redis-streams';
import { FanoutService } from './fanout.service';

/**
 * Consumer group `fanout` on the coord ingest stream. The transport decodes and validates each
 * entry as a coord op envelope (invalid ones go to the dead-letter stream with the reason, and
 * never reach us) and acks a batch once `handle` resolves; any number of replicas share the group.
 * Batches, not single entries: one script run fans out up to FANOUT_BATCH_SIZE envelopes in
 * ingest order, which is what sets the throughput.
 */
@Controller()
export class FanoutController {
  constructor(private readonly fanout: FanoutService) {}

  @StreamBatchHandler({ stream: 'coordIngest', group: GROUPS.fanout, schema: 'coordOp' })
  handle(@Payload() batch: StreamBatch<CoordOpEnvelope>): Promise<void> {
    return this.fanout.handle(batch.entries.map((e) => ({ id: e.id, env: e.data })));
  }
}
