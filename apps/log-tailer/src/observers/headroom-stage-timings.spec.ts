import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HeadroomStageTimingsObserver, parseAsctime } from './headroom-stage-timings';
import { createObserver, knownObservers } from './registry';

const FIXTURES = join(__dirname, '__fixtures__');

// The proxy logs local time without a zone; the golden file was recorded in UTC.
const savedTz = process.env.TZ;
beforeAll(() => {
  process.env.TZ = 'UTC';
});
afterAll(() => {
  process.env.TZ = savedTz;
});

describe('headroom-stage-timings observer', () => {
  const observer = new HeadroomStageTimingsObserver({ thresholdMs: 500 });

  it('matches the golden fixture line for line (fails loudly if the log format drifts)', () => {
    const lines = readFileSync(join(FIXTURES, 'headroom-proxy.log'), 'utf8').split('\n');
    const golden = JSON.parse(
      readFileSync(join(FIXTURES, 'headroom-proxy.golden.json'), 'utf8'),
    ) as unknown[];
    expect(lines.length).toBe(golden.length);
    const actual = lines.map((line) => JSON.parse(JSON.stringify(observer.observe(line))) as unknown);
    for (let i = 0; i < lines.length; i++) {
      expect({ line: i + 1, observation: actual[i] }).toEqual({ line: i + 1, observation: golden[i] });
    }
    // The contract is not vacuous: the real line and the breaches are recognised.
    expect(actual.filter(Boolean).length).toBe(6);
  });

  it('reports the real line in milliseconds as written, with the dominant blocking stage', () => {
    const real = readFileSync(join(FIXTURES, 'headroom-proxy.log'), 'utf8').split('\n')[0];
    const obs = observer.observe(real)!;
    expect(obs.durationMs).toBe(31.62);
    expect(obs.dominantStage).toBe('compression_first_stage');
    expect(obs.severity).toBe('ok');
    expect(new Date(obs.timeMs!).toISOString()).toBe('2026-04-26T04:27:16.862Z');
  });

  it('grades severity at the threshold and at 4x it', () => {
    const line = (ms: number) =>
      `2026-04-26 04:27:16,862 - headroom.proxy - INFO - [hr_1_1] STAGE_TIMINGS {"event": "stage_timings", "stages": {"deep_copy": 1, "total_pre_upstream": ${ms}}}`;
    const o = new HeadroomStageTimingsObserver({ thresholdMs: 100 });
    expect([99.99, 100, 399.9, 400, 10_000].map((ms) => o.observe(line(ms))!.severity)).toEqual([
      'ok',
      'degraded',
      'degraded',
      'stall',
      'stall',
    ]);
  });

  it('never throws on garbage', () => {
    for (const junk of [
      '',
      'STAGE_TIMINGS',
      'STAGE_TIMINGS {',
      'STAGE_TIMINGS {"stages": {"total_pre_upstream": 1e999}}',
      '\u0000\uffff',
      'x'.repeat(10_000),
    ]) {
      expect(() => observer.observe(junk)).not.toThrow();
    }
    expect(observer.observe('STAGE_TIMINGS {"stages": {"total_pre_upstream": 1e999}}')).toBeNull();
  });

  it('refuses impossible timestamps instead of inventing one', () => {
    expect(parseAsctime('2026-02-31 04:27:16,862 x')).toBeNull();
    expect(parseAsctime('no time here')).toBeNull();
    expect(parseAsctime('2026-04-26 04:27:16,8x2 x')).toBeNull();
    // The per-second cache must not leak one line's time into another's.
    expect(parseAsctime('2026-04-26 04:27:16,001 a')! + 998).toBe(parseAsctime('2026-04-26 04:27:16,999 b'));
    expect(parseAsctime('2026-04-26 04:27:17,000 c')).toBe(parseAsctime('2026-04-26 04:27:16,999 d')! + 1);
  });
});

describe('observer registry', () => {
  it('builds known observers and names the known ones for an unknown name', () => {
    expect(createObserver('headroom-stage-timings', { thresholdMs: 1 }).name).toBe('headroom-stage-timings');
    expect(() => createObserver('nginx', { thresholdMs: 1 })).toThrow(
      `known observers: ${knownObservers().join(', ')}`,
    );
  });
});
