import { Observation, Severity } from '../observers/line-observer';
import { EpisodeTracker } from './episode-tracker';

const obs = (severity: Severity, ms: number, stage = 'deep_copy'): Observation => ({
  timeMs: null,
  durationMs: ms,
  severity,
  dominantStage: stage,
  detail: {},
});

describe('EpisodeTracker', () => {
  it('refuses quiet_ms below 50 (0 would spin)', () => {
    expect(() => new EpisodeTracker(0)).toThrow(/at least 50 ms/);
    expect(() => new EpisodeTracker(49)).toThrow(/at least 50 ms/);
    expect(() => new EpisodeTracker(50)).not.toThrow();
  });

  it('coalesces a burst into one episode with count, peak, first/last time, dominant stage and peak severity', () => {
    const t = new EpisodeTracker(1000);
    expect(t.observe(obs('degraded', 600, 'read_request_json'), 10_000, 10_000)).toBeNull();
    expect(t.observe(obs('stall', 2500, 'compression_first_stage'), 10_200, 10_200)).toBeNull();
    expect(t.observe(obs('degraded', 700, 'compression_first_stage'), 10_900, 10_900)).toBeNull();
    expect(t.observe(obs('ok', 10), 11_000, 11_000)).toBeNull();
    const closed = t.closeIfQuiet(11_900);
    expect(closed).toMatchObject({
      count: 3,
      peak_ms: 2500,
      peak_severity: 'stall',
      dominant_stage: 'compression_first_stage',
      first_ms: 10_000,
      last_breach_ms: 10_900,
      stage_counts: { read_request_json: 1, compression_first_stage: 2 },
    });
    expect(t.current).toBeNull();
  });

  it('closes after quiet_ms of normal lines, even if no timer fires', () => {
    const t = new EpisodeTracker(500);
    t.observe(obs('degraded', 600), 1000, 1000);
    expect(t.observe(obs('ok', 5), 1400, 1400)).toBeNull();
    const closed = t.observe(obs('ok', 5), 1500, 1500);
    expect(closed?.count).toBe(1);
    expect(t.current).toBeNull();
  });

  it('a breach after the quiet gap closes the old episode and opens a new one', () => {
    const t = new EpisodeTracker(500);
    t.observe(obs('stall', 3000), 1000, 1000);
    const closed = t.observe(obs('degraded', 600), 2000, 2000);
    expect(closed?.peak_ms).toBe(3000);
    expect(t.current).toMatchObject({ count: 1, peak_ms: 600, peak_severity: 'degraded' });
  });

  it('does not close before the quiet period; flush closes now; restore brings an episode back', () => {
    const t = new EpisodeTracker(500);
    t.observe(obs('degraded', 600), 1000, 5000);
    expect(t.dueAt()).toBe(5500);
    expect(t.closeIfQuiet(5499)).toBeNull();
    const state = t.current!;
    const t2 = new EpisodeTracker(500);
    t2.restore(JSON.parse(JSON.stringify(state)));
    t2.observe(obs('degraded', 900), 1100, 5100);
    expect(t2.flush()).toMatchObject({ count: 2, peak_ms: 900 });
    expect(t2.flush()).toBeNull();
  });
});
