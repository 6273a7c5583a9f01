import { readdirSync, readFileSync, statSync } from 'node:fs';

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

/** Every process visible in /proc (empty where there is no /proc). */
export function listProcs(): ProcInfo[] {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  const out: ProcInfo[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const info = parseStat(Number(name), readFileSync(`/proc/${name}/stat`, 'utf8'));
      if (info) out.push(info);
    } catch {
      // Exited between readdir and read.
    }
  }
  return out;
}

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
 */
export class JobProcesses {
  /** pid -> start time of every process known to belong to the job. */
  private readonly known = new Map<number, { start: string; comm: string }>();
  private timer: NodeJS.Timeout | undefined;
  private readonly leaderStart: bigint;

  constructor(
    private readonly leader: ProcInfo,
    private readonly marker: string,
    sampleMs = 250,
  ) {
    this.leaderStart = BigInt(leader.start);
    this.known.set(leader.pid, { start: leader.start, comm: leader.comm });
    if (sampleMs > 0) {
      this.timer = setInterval(() => this.sample(), sampleMs);
      this.timer.unref();
    }
  }

  /** Adds whatever now belongs to the job; returns the members alive now. */
  sample(procs: ProcInfo[] = listProcs(), withMarker = false): ProcInfo[] {
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
   * returns what is still alive after that (reported on the job).
   */
  async sweep(graceMs: number): Promise<Survivor[]> {
    this.stop();
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
