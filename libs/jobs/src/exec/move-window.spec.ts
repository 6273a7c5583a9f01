import { CgroupMoveWindow, DEFAULT_CGROUP_MOVE_WINDOW } from './move-window';

/** Spawns at the given times (ms); what the helper is told for each: the gap to move at, or null. */
function spawnsAt(w: CgroupMoveWindow, times: number[]): (number | null)[] {
  return times.map((t) => w.decide(t));
}

describe('CgroupMoveWindow (when the spawner helper moves into a job cgroup itself)', () => {
  it('starts at its minimum: a burst is moved, a spawn after a pause goes through the shell', () => {
    const w = new CgroupMoveWindow();
    expect(w.ms).toBe(DEFAULT_CGROUP_MOVE_WINDOW.minMs);
    // The first spawn has no gap to judge by; the next one 3 ms later is within the window.
    expect(w.decide(10_000)).toBeNull();
    expect(w.decide(10_003)).toBe(3);
    expect(w.decide(10_007)).toBe(4);
  });

  it('probes past the window at most once a second, and grows to cover a gap that moved cheaply', () => {
    const w = new CgroupMoveWindow();
    w.decide(0);
    // 50 ms gaps: the first is a probe, the rest within the next second are not.
    const first = spawnsAt(w, [50, 100, 150, 200]);
    expect(first).toEqual([50, null, null, null]);
    w.observe(50, 0.3);
    expect(w.ms).toBe(50);
    expect(spawnsAt(w, [250, 300])).toEqual([50, 50]);
  });

  it('shrinks to half the gap of a stalled move, and backs off its probes', () => {
    const w = new CgroupMoveWindow();
    w.decide(0);
    w.decide(200); // probe at 200 ms
    w.observe(200, 0.2);
    expect(w.ms).toBe(200);
    // A move 180 ms after the one before stalled for 4 ms: 180 ms is too long a pause here.
    expect(w.decide(380)).toBe(180);
    w.observe(180, 4);
    expect(w.ms).toBe(90);
    expect(w.decide(470)).toBe(90);
    // Past the window: after that stall the next probe waits 2 s from the last one (at 200).
    expect(w.decide(1_250)).toBeNull();
    expect(w.decide(2_250)).toBe(1_000);
    w.observe(1_000, 9);
    expect(w.ms).toBe(90);
    // Two stalls: 4 s between probes.
    expect(w.decide(6_000)).toBeNull();
    expect(w.decide(6_300)).toBe(300);
    // A cheap probe grows the window and brings probes back to one a second.
    w.observe(300, 0.5);
    expect(w.ms).toBe(300);
    expect(w.decide(6_550)).toBe(250);
    expect(w.decide(7_000)).toBeNull();
    expect(w.decide(7_400)).toBe(400);
  });

  it('never shrinks below its minimum, nor probes at gaps past its maximum', () => {
    const w = new CgroupMoveWindow({ ...DEFAULT_CGROUP_MOVE_WINDOW, minMs: 5, maxMs: 1_000 });
    w.decide(0);
    expect(w.decide(4)).toBe(4);
    w.observe(4, 20);
    expect(w.ms).toBe(5);
    // 5 s after the last spawn: no probe, whatever the back-off says.
    expect(w.decide(5_004)).toBeNull();
    expect(w.decide(5_508)).toBe(504);
    w.observe(504, 0.1);
    expect(w.ms).toBe(504);
  });

  it('on a machine where moves never stall it ends up moving for every spawn up to its maximum', () => {
    const w = new CgroupMoveWindow();
    let t = 0;
    let moved = 0;
    // A spawn every 300 ms for a minute; every move is cheap.
    for (let i = 0; i < 200; i++, t += 300) {
      const gap = w.decide(t);
      if (gap === null) continue;
      moved++;
      w.observe(gap, 0.2);
    }
    expect(w.ms).toBe(300);
    expect(moved).toBe(199);
  });

  it('on a machine where every move after 20 ms stalls, stalls stay rare', () => {
    const w = new CgroupMoveWindow();
    let t = 0;
    let stalls = 0;
    let moved = 0;
    // A spawn every 30 ms for ten minutes, as an idle replica's one-at-a-time jobs come.
    for (let i = 0; i < 20_000; i++, t += 30) {
      const gap = w.decide(t);
      if (gap === null) continue;
      moved++;
      const took = gap > 20 ? 8 : 0.2;
      if (took > 1) stalls++;
      w.observe(gap, took);
    }
    expect(w.ms).toBe(DEFAULT_CGROUP_MOVE_WINDOW.minMs);
    // Probes back off to one a minute: a dozen stalls in 20 000 spawns.
    expect(stalls).toBeLessThanOrEqual(20);
    expect(moved).toBe(stalls);
  });

  it('fixed: Infinity moves for every spawn, 0 for none, and what moves take changes nothing', () => {
    const always = CgroupMoveWindow.fixed(Infinity);
    const never = CgroupMoveWindow.fixed(0);
    expect(always.decide(0)).toBe(Infinity);
    expect(never.decide(0)).toBeNull();
    for (let t = 1; t < 5_000; t += 700) {
      expect(always.decide(t)).not.toBeNull();
      always.observe(700, 50);
      expect(never.decide(t)).toBeNull();
    }
    expect(always.ms).toBe(Infinity);
  });

  it('counts a spawn the helper cannot move for (no way back) without moving for it', () => {
    const w = CgroupMoveWindow.fixed(Infinity);
    expect(w.decide(0, false)).toBeNull();
    const burst = new CgroupMoveWindow();
    burst.decide(0, false);
    expect(burst.decide(2)).toBe(2);
  });

  it('refuses options that cannot make a window, naming them', () => {
    expect(() => new CgroupMoveWindow({ ...DEFAULT_CGROUP_MOVE_WINDOW, minMs: 10, maxMs: 5 })).toThrow(
      /invalid cgroup move window options: .*"minMs":10/,
    );
    expect(() => new CgroupMoveWindow({ ...DEFAULT_CGROUP_MOVE_WINDOW, probeMs: 0 })).toThrow(RangeError);
  });
});
