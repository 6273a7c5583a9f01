import { Registry } from 'prom-client';
import { CoordOpEnvelope } from '@coordbus/envelope';
import { FanoutItem, FanoutRepository } from './fanout.repository';
import { FanoutService } from './fanout.service';

describe('FanoutService', () => {
  it('counts what a batch published, by level, and the redeliveries it skipped', async () => {
    const registry = new Registry();
    const flags = [true, false, true, true, false];
    const repo = { fanout: async () => flags } as unknown as FanoutRepository;
    const item = (level: string): FanoutItem => ({ id: '1-0', env: { level } as CoordOpEnvelope });
    await new FanoutService(repo, registry).handle(['info', 'info', 'error', 'info', 'warn'].map(item));
    const published = await registry.getSingleMetric('coordbus_fanout_published_total')!.get();
    expect(Object.fromEntries(published.values.map((v) => [v.labels.level, v.value]))).toEqual({
      info: 2,
      error: 1,
    });
    const duplicates = await registry.getSingleMetric('coordbus_fanout_duplicates_total')!.get();
    expect(duplicates.values.map((v) => v.value)).toEqual([2]);
  });
});
