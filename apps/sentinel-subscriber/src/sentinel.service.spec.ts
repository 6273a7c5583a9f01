import { Registry } from 'prom-client';
import { CoordEvent, newUlid } from '@coordbus/envelope';
import { METRICS_REGISTRY } from '@coordbus/runtime';
import { newTestService } from '@coordbus/testing';
import { SentinelMetrics } from './metrics';
import { ObservationRepository } from './observations/observation.repository';
import { SentinelService } from './sentinel.service';
import { CLOCK } from './tokens';

const NOW = Date.parse('2026-06-01T10:00:05.000Z');

const event = (): CoordEvent =>
  ({
    tx_id: newUlid(),
    tx_kind: 'lock.acquire',
    ts: '2026-06-01T10:00:04.000Z',
    ingress_ts: null,
    source: 'coord',
    session_id: 's1',
    resource: 'src/a.ts',
    payload: { ttl_s: 60 },
  }) as unknown as CoordEvent;

async function setup() {
  const registry = new Registry();
  const { sut, mocks } = await newTestService(SentinelService, [
    SentinelMetrics,
    { provide: METRICS_REGISTRY, useValue: registry },
    { provide: CLOCK, useValue: () => NOW },
  ]);
  const count = async (name: string) =>
    (await registry.getSingleMetric(name)!.get()).values.reduce((n, v) => n + v.value, 0);
  return { sut, observations: mocks.of<ObservationRepository>(ObservationRepository), count };
}

describe('SentinelService', () => {
  it('stamps ingress_ts from its clock, writes the observation and counts it', async () => {
    const { sut, observations, count } = await setup();
    observations.recordOnce.mockResolvedValue({ written: true, id: '1-0' });
    const e = event();
    expect(await sut.handleEvent(e)).toBe('observed');
    expect(e.ingress_ts).toBe('2026-06-01T10:00:05.000Z');
    expect(observations.recordOnce).toHaveBeenCalledWith(expect.objectContaining({ tx_id: e.tx_id }));
    expect(await count('coordbus_sentinel_events_handled_total')).toBe(1);
    expect(await count('coordbus_sentinel_duplicates_dropped_total')).toBe(0);
  });

  it('counts a (source, tx_id) the repository already observed as a duplicate, not as handled', async () => {
    const { sut, observations, count } = await setup();
    observations.recordOnce.mockResolvedValue({ written: false, id: null });
    expect(await sut.handleEvent(event())).toBe('duplicate');
    expect(await count('coordbus_sentinel_duplicates_dropped_total')).toBe(1);
    expect(await count('coordbus_sentinel_events_handled_total')).toBe(0);
  });
});
