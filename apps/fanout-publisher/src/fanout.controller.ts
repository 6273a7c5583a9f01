import { Controller } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { CoordOpEnvelope, GROUPS } from '@coordbus/envelope';
import { RedisStreamsContext, StreamHandler } from '@coordbus/redis-streams';
import { FanoutService } from './fanout.service';

/**
 * Consumer group `fanout` on the coord ingest stream. The transport decodes and validates each
 * entry as a coord op envelope (invalid ones go to the dead-letter stream with the reason, and
 * never reach us) and acks it once `handle` resolves; any number of replicas share the group.
 * Handlers of one replica run concurrently and their script calls pipeline on one connection.
 */
@Controller()
export class FanoutController {
  constructor(private readonly fanout: FanoutService) {}

  @StreamHandler({ stream: 'coordIngest', group: GROUPS.fanout, schema: 'coordOp' })
  handle(@Payload() env: CoordOpEnvelope, @Ctx() ctx: RedisStreamsContext): Promise<void> {
    return this.fanout.handle([{ id: ctx.getEntryId(), env }]);
  }
}
