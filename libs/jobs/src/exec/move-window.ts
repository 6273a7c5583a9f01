/**
 * Whether the spawner helper moves itself into a job's cgroup for the fork, or puts a `/bin/sh`
 * in front of the job that joins the cgroup itself (issue #15 §2).
 *
 * The shell costs one more exec per job (0.8 ms of CPU on a plain VM, 3 ms on a PVM guest). A
 * move costs the helper the kernel's cgroup_threadgroup_rwsem for writing, and how long that takes
 * depends on the machine and on how long ago the last move was: the first one after a pause may
 * wait for an RCU grace period, and while the helper waits every spawn behind it waits too (a
 * shell waits only for its own job). Measured, as the time after the previous move at which moves
 * start to stall past a millisecond: 20 ms on one VM (20 % of moves then took 2–14 ms, none of
 * those 2 ms apart over 0.2 ms), 150 ms on another (73 % of moves 300 ms apart took 2.5–11 ms).
 * No constant suits both, so the window is learnt from what the helper reports each move took
 * (less any time it waited for a CPU meanwhile: on a loaded machine a preemption in the middle of
 * the write was most of its wall time, and read as a stall).
 *
 * - A spawn within the window of the previous one (any spawn with a cgroup) is moved.
 * - Past the window, one spawn in a while is moved anyway (a probe): cheap, the window grows to
 *   cover that gap; a stall, the window shrinks to half the gap and probes back off.
 * - A moved spawn inside the window that stalls shrinks it the same way, so a machine whose moves
 *   turn slow pays a stall or two, not one per job.
 */
export interface CgroupMoveWindowOptions {
  /** The window it never shrinks below: this close, no machine measured stalled. */
  minMs: number;
  /** The longest gap a probe is made at (a cheap move after this long: every move is cheap). */
  maxMs: number;
  /** A move that took longer than this is a stall. */
  stallMs: number;
  /** The time between probes after a cheap one; doubles after each stall up to maxProbeMs. */
  probeMs: number;
  maxProbeMs: number;
}

export const DEFAULT_CGROUP_MOVE_WINDOW: CgroupMoveWindowOptions = {
  minMs: 5,
  maxMs: 10_000,
  stallMs: 1,
  probeMs: 1_000,
  maxProbeMs: 64_000,
};

export class CgroupMoveWindow {
  private windowMs: number;
  private readonly adaptive: boolean;
  /** When (performance.now()) the previous spawn with a cgroup was asked for. */
  private last = -Infinity;
  private probeEveryMs: number;
  private lastProbeAt = -Infinity;

  constructor(private readonly options: CgroupMoveWindowOptions = DEFAULT_CGROUP_MOVE_WINDOW) {
    const { minMs, maxMs, stallMs, probeMs, maxProbeMs } = options;
    if (!(minMs >= 0 && maxMs >= minMs && stallMs >= 0 && probeMs > 0 && maxProbeMs >= probeMs)) {
      throw new RangeError(`invalid cgroup move window options: ${JSON.stringify(options)}`);
    }
    this.windowMs = minMs;
    this.adaptive = maxMs > minMs;
    this.probeEveryMs = probeMs;
  }

  /** A window that never changes (tests: Infinity = always move, 0 = never). */
  static fixed(ms: number): CgroupMoveWindow {
    return new CgroupMoveWindow({ ...DEFAULT_CGROUP_MOVE_WINDOW, minMs: ms, maxMs: ms });
  }

  /** The current window in ms. */
  get ms(): number {
    return this.windowMs;
  }

  /**
   * A spawn with a cgroup at `now`: the gap since the previous one when the helper is to move for
   * it (pass it back to observe() with what the move took), else null. `canMove` false (the helper
   * has no way back): it is only counted as a spawn.
   */
  decide(now: number, canMove = true): number | null {
    const gap = now - this.last;
    this.last = now;
    if (!canMove || this.windowMs <= 0) return null;
    if (gap <= this.windowMs) return gap;
    if (this.adaptive && gap <= this.options.maxMs && now - this.lastProbeAt >= this.probeEveryMs) {
      this.lastProbeAt = now;
      return gap;
    }
    return null;
  }

  /** The helper's move into a job's cgroup took `tookMs`, `gap` ms after the spawn before it. */
  observe(gap: number, tookMs: number): void {
    if (!this.adaptive) return;
    const { minMs, maxMs, stallMs, probeMs, maxProbeMs } = this.options;
    if (tookMs <= stallMs) {
      if (gap > this.windowMs) {
        this.windowMs = Math.min(maxMs, gap);
        this.probeEveryMs = probeMs;
      }
      return;
    }
    this.windowMs = Math.max(minMs, Math.min(this.windowMs, gap / 2));
    this.probeEveryMs = Math.min(maxProbeMs, this.probeEveryMs * 2);
  }
}
