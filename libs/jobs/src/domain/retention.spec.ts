import { retention, RetentionJob, RetentionPolicy } from './retention';

const H = 3_600_000;
const NOW = Date.parse('2026-01-10T00:00:00Z');
const policy: RetentionPolicy = { keepLast: 2, retentionMs: 24 * H, staleRunningAfterMs: 5 * 60_000 };

let n = 0;
function job(p: Partial<RetentionJob> & { ageH?: number }): RetentionJob {
  const ended = NOW - (p.ageH ?? 1) * H;
  n++;
  return {
    id: `J${String(n).padStart(4, '0')}`,
    worktree: 'wt',
    status: 'succeeded',
    created_at_ms: ended - 1000,
    started_at_ms: ended - 900,
    finished_at_ms: ended,
    keep_last: null,
    retention_ms: null,
    runner_alive: true,
    ...p,
  };
}

const ids = (xs: { id: string }[]) => xs.map((x) => x.id).sort();

describe('retention', () => {
  it('evicts finished jobs older than the retention age, beyond the keep-last floor', () => {
    const fresh = [job({ ageH: 1 }), job({ ageH: 2 })];
    const old = [job({ ageH: 30 }), job({ ageH: 40 })];
    const d = retention({ jobs: [...fresh, ...old], policy, nowMs: NOW });
    expect(ids(d.evict)).toEqual(ids(old));
    expect(d.kept).toBe(2);
  });

  it('keeps the newest keep-last jobs of each worktree however old they are', () => {
    const a = [
      job({ worktree: 'a', ageH: 100 }),
      job({ worktree: 'a', ageH: 200 }),
      job({ worktree: 'a', ageH: 300 }),
    ];
    const b = [job({ worktree: 'b', ageH: 100 })];
    const none = [
      job({ worktree: null, ageH: 100 }),
      job({ worktree: null, ageH: 101 }),
      job({ worktree: null, ageH: 102 }),
    ];
    const d = retention({ jobs: [...a, ...b, ...none], policy, nowMs: NOW });
    // Per worktree: a keeps its 2 newest, b keeps its only one, the no-worktree group keeps 2.
    expect(ids(d.evict)).toEqual(ids([a[2], none[2]]));
  });

  it('honours a per-job retention and keep-last override', () => {
    const longLived = job({ ageH: 50, retention_ms: 100 * H });
    const shortLived = job({ ageH: 3, retention_ms: 1 * H });
    const floor = [job({ ageH: 1 }), job({ ageH: 2 })];
    const keptByOwnFloor = job({ ageH: 60, keep_last: 10 });
    const d = retention({ jobs: [longLived, shortLived, ...floor, keptByOwnFloor], policy, nowMs: NOW });
    expect(ids(d.evict)).toEqual([shortLived.id]);
  });

  it('lets a prune-time override beat per-job settings', () => {
    const j = job({ ageH: 50, retention_ms: 100 * H, keep_last: 10 });
    const d = retention({ jobs: [j], policy, override: { retentionMs: 10 * H, keepLast: 0 }, nowMs: NOW });
    expect(ids(d.evict)).toEqual([j.id]);
  });

  it('never evicts active jobs, however old', () => {
    const jobs = (['queued', 'running', 'cancelling'] as const).map((status) =>
      job({ status, ageH: 500, finished_at_ms: null, runner_alive: true }),
    );
    const d = retention({ jobs, policy: { ...policy, keepLast: 0 }, nowMs: NOW });
    expect(d.evict).toEqual([]);
    expect(d.markCrashed).toEqual([]);
  });

  it('marks a running job crashed when its runner is gone past the stale threshold', () => {
    const stale = job({
      status: 'running',
      finished_at_ms: null,
      started_at_ms: NOW - 10 * 60_000,
      runner_alive: false,
    });
    const young = job({
      status: 'running',
      finished_at_ms: null,
      started_at_ms: NOW - 60_000,
      runner_alive: false,
    });
    const alive = job({
      status: 'running',
      finished_at_ms: null,
      started_at_ms: NOW - 10 * H,
      runner_alive: true,
    });
    const cancelling = job({
      status: 'cancelling',
      finished_at_ms: null,
      started_at_ms: NOW - 10 * H,
      runner_alive: false,
    });
    const queued = job({
      status: 'queued',
      finished_at_ms: null,
      started_at_ms: null,
      runner_alive: false,
      ageH: 10,
    });
    const d = retention({ jobs: [stale, young, alive, cancelling, queued], policy, nowMs: NOW });
    expect(ids(d.markCrashed)).toEqual(ids([stale, cancelling]));
    expect(d.evict).toEqual([]);
  });

  it('treats every terminal status alike, crashed and skipped included', () => {
    const jobs = (['failed', 'signaled', 'cancelled', 'timed-out', 'skipped', 'crashed'] as const).map(
      (status) => job({ status, ageH: 48 }),
    );
    const d = retention({ jobs, policy: { ...policy, keepLast: 0 }, nowMs: NOW });
    expect(d.evict).toHaveLength(6);
  });

  it('ranks by finish time, newest first, for the floor', () => {
    const older = job({ ageH: 30 });
    const newer = job({ ageH: 29 });
    const newest = job({ ageH: 28 });
    const d = retention({ jobs: [older, newest, newer], policy: { ...policy, keepLast: 1 }, nowMs: NOW });
    expect(ids(d.evict)).toEqual(ids([older, newer]));
  });
});
