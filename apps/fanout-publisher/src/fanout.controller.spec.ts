import { CoordOpEnvelope } from '@coordbus/envelope';
import { StreamBatch } from '@coordbus/redis-streams';
import { FanoutController } from './fanout.controller';
import { FanoutItem } from './fanout.repository';
import { FanoutService } from './fanout.service';

describe('FanoutController', () => {
  it("hands the service each entry's id, DTO and the text the codec vouched for", async () => {
    const seen: FanoutItem[][] = [];
    const service = {
      handle: async (items: FanoutItem[]) => void seen.push(items),
    } as unknown as FanoutService;
    const env = { level: 'info' } as CoordOpEnvelope;
    const batch: StreamBatch<CoordOpEnvelope> = {
      stream: 's',
      group: 'fanout',
      entries: [
        { id: '1-0', data: env, deliveryCount: 1, text: '{"level":"info"}' },
        { id: '2-0', data: env, deliveryCount: 1 },
      ],
    };
    await new FanoutController(service).handle(batch);
    expect(seen).toEqual([
      [
        { id: '1-0', env, text: '{"level":"info"}' },
        { id: '2-0', env, text: undefined },
      ],
    ]);
  });
});
