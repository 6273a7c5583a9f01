import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';

/** One process as /proc shows it. */
export interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** R, S, D, Z (zombie: already dead, waiting for its parent to reap it), ... */
  state: string;
  /** Field 22 of /proc/<pid>/stat: tells a process from a later one that reused its pid. */
  start: string;
  comm: string;
}

/** Parses /proc/<pid>/stat (comm may hold spaces and parentheses: fields count from the last ')'). */
export function parseStat(pid: number, stat: string): ProcInfo | null {
  const close = stat.lastIndexOf(')');
  if (close < 0) return null;
  const comm = stat.slice(stat.indexOf('(') + 1, close);
  const f = stat.slice(close + 2).split(' ');
  // f[0] state, f[1] ppid, f[2] pgrp, f[3] session, ... f[19] starttime
  if (f.length < 20) return null;
  return { pid, ppid: Number(f[1]), pgid: Number(f[2]), sid: Number(f[3]), state: f[0], start: f[19], comm };
}

/** One buffer for every small /proc read: a stat line is a few hundred bytes. */
const small = Buffer.alloc(4096);

/**
 * The text of a small /proc file (a `stat`, `ns_last_pid`), or null when it cannot be read. One
 * open/read/close into a shared buffer: readFileSync's fstat and second read double the syscalls
 * of a sweep, which reads one such file per process on the host.
 */
export function readSmallProcFile(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    const n = readSync(fd, small, 0, small.length, null);
    // A longer file (a comm full of multi-byte characters cannot make a stat this long): read it all.
    return n < small.length ? small.toString('utf8', 0, n) : readFileSync(path, 'utf8');
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** /proc/<pid>/stat parsed, or null once the process is gone (or where there is no /proc). */
export function readStat(pid: number): ProcInfo | null {
  const stat = readSmallProcFile(`/proc/${pid}/stat`);
  return stat === null ? null : parseStat(pid, stat);
}

/**
 * Every process visible in /proc (empty where there is no /proc); with `pids`, only those whose
 * pid lies in (after, upTo] — listing /proc costs little, reading each process's stat is the cost.
 */
export function listProcs(pids?: PidRange): ProcInfo[] {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  const out: ProcInfo[] = [];
  for (const name of names) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue; // not a pid
    const pid = Number(name);
    if (pids && (pid <= pids.after || pid > pids.upTo)) continue;
    // null: exited between readdir and read.
    const info = readStat(pid);
    if (info) out.push(info);
  }
  return out;
}

/** Where the kernel keeps the last pid it gave out in this process's pid namespace. */
const NS_LAST_PID = '/proc/sys/kernel/ns_last_pid';

function readLastPid(): number | null {
  const text = readSmallProcFile(NS_LAST_PID);
  const n = text === null ? NaN : Number(text.trim());
  return Number.isInteger(n) ? n : null;
}

/** A reading of {@link PidClock}: the namespace's last pid and this process's spawn count then. */
export interface PidMark {
  last: number;
  own: number;
  /** Date.now() of the reading. */
  at: number;
}

/** The pids given out between two readings: (after, upTo]. */
export interface PidRange {
  after: number;
  upTo: number;
}

function readPidMax(): number {
  const n = Number(readSmallProcFile('/proc/sys/kernel/pid_max')?.trim());
  // The smallest pid_max Linux allows past its reserved pids, when unreadable.
  return Number.isInteger(n) && n > 0 ? n : 32_768;
}

/**
 * How long the pids given out since a mark are known to be exactly (mark, now]: until the
 * counter could have gone once round pid_max and back past the mark unseen. Assumes the host
 * creates fewer than 32 000 tasks a second (1 s at the smallest pid_max, a minute at the usual
 * 4 194 304); older marks fall back to a scan of every process.
 */
const RANGE_TRUST_MS = Math.min(60_000, readPidMax() / 32);

/**
 * Proves that no process was created since a mark, other than by this process's own spawns, so
 * that a job which never forked needs no `/proc` scan to be contained. Every task the kernel
 * creates in our pid namespace (or in one nested in it: a job cannot escape upwards) takes a pid,
 * and the namespace's last pid (`ns_last_pid`) moves by at least one per task, wrapping only past
 * pid_max. So if it moved by exactly the number of processes this process spawned meanwhile,
 * those spawns are all that was created: no descendant of any job exists that did not exist at
 * the mark. Anything else (a thread anywhere, another program, a job's fork, pids skipped as in
 * use, a wrap, no /proc) makes the count differ, and the caller scans as before: the proof can
 * fail to hold, never hold falsely.
 */
export class PidClock {
  protected own = 0;

  constructor(
    private readonly lastPid: () => number | null = readLastPid,
    private readonly trustMs = RANGE_TRUST_MS,
  ) {}

  /** Null where the kernel does not say (no /proc): nothing is ever proven quiet then. */
  mark(): PidMark | null {
    const last = this.lastPid();
    return last === null ? null : { last, own: this.own, at: Date.now() };
  }

  /**
   * Counts a process this process just created, called synchronously after the spawn returned
   * its pid (a spawn that failed may or may not have forked: not counting it only costs a scan).
   */
  spawned(): void {
    this.own++;
  }

  /** True when every pid given out since `mark` went to this process's own spawns. */
  quietSince(mark: PidMark | null): boolean {
    if (!mark) return false;
    const last = this.lastPid();
    return last !== null && last - mark.last === this.own - mark.own;
  }

  /**
   * Every pid given out since `mark` (so every process created since has one of them), or null
   * when that cannot be told: no mark, the counter wrapped, or the mark is too old to rule out a
   * whole lap round pid_max.
   */
  pidsSince(mark: PidMark | null): PidRange | null {
    if (!mark || Date.now() - mark.at > this.trustMs) return null;
    const last = this.lastPid();
    return last === null || last < mark.last ? null : { after: mark.last, upTo: last };
  }
}

/** The one clock of this process: every job spawn of the process must be counted on it. */
export const pidClock = new PidClock();

/** True when the process's environment carries `marker` (NAME=value); false when unreadable. */
function hasEnvMarker(pid: number, marker: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`).includes(`${marker}\0`);
  } catch {
    return false;
  }
}

const myUid = process.getuid?.() ?? -1;

function ownedByMe(pid: number): boolean {
  try {
    return statSync(`/proc/${pid}`).uid === myUid;
  } catch {
    return false;
  }
}

/** What a sweep could not end: still alive after SIGKILL, or refused a signal. */
export interface Survivor {
  pid: number;
  comm: string;
  why: string;
}

/**
 * Everything one job started, so that all of it ends with the job. Without cgroups (not used
 * here), membership is the union of: the job's process group and session (the job leads both:
 * it is spawned detached), descendants by parent chain of anything already known (sampled while
 * the job runs, so a grandchild that called setsid and whose parent then exited stays known),
 * and, at the sweep, any process of ours started after the job whose environment still carries
 * the job's marker (COORDBUS_JOB_ID=<id>: catches double-forked daemons that escaped between
 * samples). A process that clears its environment and escapes between two samples is the one
 * case left; cgroup v2 would close it.
 *
 * What it costs: reading a process's stat is the expensive part (kernel time, per process on the
 * host). Everything the job started was created after its spawn, so {@link PidClock} does the
 * cheap part first: when no process at all was created since, there is nothing to read (a job
 * that never forked, the common hook); when the pids given out since are known, only those are
 * read; otherwise every process is, as before.
 */
export class JobProcesses {
  /** pid -> start time of every process known to belong to the job. */
  private readonly known = new Map<number, { start: string; comm: string }>();
  private timer: NodeJS.Timeout | undefined;
  private readonly leaderStart: bigint;

  /** When the last sample's scan began (the spawn, before the first). */
  private sampledAt: PidMark | null;

  /**
   * @param spawnMark pidClock.mark() taken just before the leader was spawned: while no other
   *   process has been created since, the job has no descendant and needs no scan.
   */
  constructor(
    private readonly leader: ProcInfo,
    private readonly marker: string,
    sampleMs = 250,
    private readonly spawnMark: PidMark | null = null,
    private readonly clock: PidClock = pidClock,
  ) {
    this.leaderStart = BigInt(leader.start);
    this.known.set(leader.pid, { start: leader.start, comm: leader.comm });
    this.sampledAt = spawnMark;
    if (sampleMs > 0) {
      this.timer = setInterval(() => this.tick(), sampleMs);
      this.timer.unref();
    }
  }

  /**
   * A periodic sample learns the processes created since the last one (while their parent chain
   * still leads to the job): with none created anywhere since, it would learn nothing.
   */
  private tick(): void {
    const at = this.clock.mark();
    if (this.clock.quietSince(this.sampledAt)) return;
    this.sampledAt = at;
    this.sample();
  }

  /**
   * The processes that can belong to the job: everything it started was created after its spawn,
   * so while the pids given out since then are known, only those are read (a few, where a full
   * scan reads every process on the host); otherwise every process.
   */
  private candidates(): ProcInfo[] {
    const since = this.clock.pidsSince(this.spawnMark);
    return since ? listProcs(since) : listProcs();
  }

  /** Adds whatever now belongs to the job; returns the members alive now. */
  sample(procs: ProcInfo[] = this.candidates(), withMarker = false): ProcInfo[] {
    const byPid = new Map(procs.map((p) => [p.pid, p]));
    // Forget known pids that are gone or were reused by an unrelated process.
    for (const [pid, k] of this.known) {
      const now = byPid.get(pid);
      if (!now || now.start !== k.start) this.known.delete(pid);
    }
    const members: ProcInfo[] = [];
    const isMember = (p: ProcInfo, depth = 0): boolean => {
      if (p.pid === process.pid) return false;
      if (this.known.has(p.pid)) return true;
      if (p.pgid === this.leader.pid || p.sid === this.leader.pid) return true;
      const parent = byPid.get(p.ppid);
      return !!parent && depth < 64 && parent.pid > 1 && isMember(parent, depth + 1);
    };
    for (const p of procs) {
      // A zombie has ended: only its parent (init, for an orphan) can reap it.
      if (p.state === 'Z' || p.state === 'X') continue;
      let member = isMember(p);
      if (!member && withMarker && BigInt(p.start) >= this.leaderStart && ownedByMe(p.pid))
        member = hasEnvMarker(p.pid, this.marker);
      if (member) {
        this.known.set(p.pid, { start: p.start, comm: p.comm });
        members.push(p);
      }
    }
    return members;
  }

  /** Signals every member; a process already gone is fine, a refusal is returned. */
  signal(sig: NodeJS.Signals, members: ProcInfo[] = this.sample(undefined, true)): Survivor[] {
    const refused: Survivor[] = [];
    for (const p of members) {
      try {
        process.kill(p.pid, sig);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ESRCH') refused.push({ pid: p.pid, comm: p.comm, why: `${sig} refused: ${code}` });
      }
    }
    return refused;
  }

  /**
   * Ends everything the job started: SIGTERM, up to `graceMs` for them to exit, then SIGKILL;
   * returns what is still alive after that (reported on the job). The leader too, when
   * `leaderMayLive`.
   */
  async sweep(graceMs: number, leaderMayLive = false): Promise<Survivor[]> {
    this.stop();
    // Once the leader has exited and been reaped: if no process was created since it was
    // spawned, nothing it started can exist (the group, the session, any escaped descendant).
    // Not when its end was never seen (`leaderMayLive`: its parent, the spawner, died).
    if (!leaderMayLive && this.clock.quietSince(this.spawnMark)) return [];
    let members = this.sample(undefined, true);
    if (!members.length) return [];
    this.signal('SIGTERM', members);
    const deadline = Date.now() + graceMs;
    while (members.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      members = this.sample(undefined, true);
    }
    const survivors: Survivor[] = [];
    // Several rounds: a process forking as it is killed leaves children to catch too.
    for (let round = 0; round < 5 && members.length; round++) {
      survivors.splice(0, survivors.length, ...this.signal('SIGKILL', members));
      await new Promise((r) => setTimeout(r, 100));
      members = this.sample(undefined, true);
    }
    const refused = new Set(survivors.map((s) => s.pid));
    for (const p of members)
      if (!refused.has(p.pid)) survivors.push({ pid: p.pid, comm: p.comm, why: 'alive after SIGKILL' });
    return survivors;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** The members of a job as one line for its record (`pid 123 (sleep): alive after SIGKILL`). */
export function describeSurvivors(survivors: Survivor[]): string {
  return survivors.map((s) => `pid ${s.pid} (${s.comm}): ${s.why}`).join(', ');
}
