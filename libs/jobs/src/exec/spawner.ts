import { spawn, type ChildProcess } from 'node:child_process';
import { getPriority, setPriority } from 'node:os';
import { join } from 'node:path';
import { cgroupSpawnArgs, type CgroupPlacement } from './cgroup';
import { parseStat, PidClock, pidClock, PidMark, ProcInfo, readStat } from './containment';
import { CgroupMoveWindow } from './move-window';

/** What a job process is started with (it always leads a new process group and session). */
export interface SpawnRequest {
  file: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Written to its stdin, which is then closed; null = stdin is /dev/null. */
  stdin: string | null;
  /** Born in this cgroup (cgroup v2), by the spawner's own move or else through cgroupSpawnArgs. */
  cgroup?: CgroupPlacement;
  /** `file` and `args` are `/bin/sh -c <script>` of a shell job (its shell joins the cgroup itself). */
  shell?: boolean;
}

/** How a spawned job process is followed; every callback is called at most once except `data`. */
export interface SpawnEvents {
  /**
   * The process exists: its pid, its /proc stat read before it could be reaped (null where there
   * is no /proc), the pid clock's reading just before its fork (see PidClock), and whether it was
   * forked inside its cgroup (SpawnRequest.cgroup): then everything it starts is in that cgroup
   * from the first instruction on, and nothing needs to be looked for in /proc.
   */
  started(info: { pid: number; leader: ProcInfo | null; mark: PidMark | null; bornInCgroup?: boolean }): void;
  /** It could not be started at all (errno code): nothing else follows. */
  failed(code: string): void;
  /** An error after it started (errno code); `exit` still follows. */
  error(code: string): void;
  data(kind: 'stdout' | 'stderr', chunk: Buffer): void;
  /** That output stream reached its end (or failed). */
  end(kind: 'stdout' | 'stderr'): void;
  /**
   * It exited and was reaped; `lost` instead when its exit status can never be known (the helper
   * process that was its parent died).
   */
  exit(code: number | null, signal: string | null, lost?: string): void;
}

/** Stops reading a job's output (a grandchild may hold its pipes open long after it exited). */
export interface SpawnedProcess {
  closeOutput(): void;
}

/**
 * Starts job processes. The clock is the one its spawns are counted on: containment's proof that
 * a job forked nothing (PidClock) holds only against the spawner's own count.
 */
export interface Spawner {
  readonly clock: PidClock;
  spawn(req: SpawnRequest, events: SpawnEvents): SpawnedProcess;
}

const STREAMS = ['stdout', 'stderr'] as const;

/** How long a new helper process may take to start (a bare Node: well under a second). */
const HELPER_START_TIMEOUT_MS = 10_000;

/**
 * Spawns from this process (the CLI's foreground jobs, and the fallback when the helper process
 * cannot run). Every event but `failed` comes from the child's own events.
 */
export class InProcessSpawner implements Spawner {
  readonly clock = pidClock;

  /** `nice`: the CPU niceness each job is given (0: this process's own). */
  constructor(private readonly nice = 0) {}

  spawn(request: SpawnRequest, events: SpawnEvents): SpawnedProcess {
    // This process does not move itself between cgroups (a replica's many threads, its timers):
    // the job's first process joins through a shell.
    const req = throughShell(request);
    // Read before the fork: if no other process is created after it, the job forked nothing.
    const mark = this.clock.mark();
    let child: ChildProcess;
    try {
      // detached: the child leads a new process group, so cancel/timeout can kill everything it started.
      child = spawn(req.file, req.args, {
        cwd: req.cwd,
        env: req.env,
        detached: true,
        stdio: [req.stdin == null ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      });
      // A job that never reads its stdin (or exits first) must not fail the runner with EPIPE.
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(req.stdin);
    } catch (err) {
      events.failed((err as NodeJS.ErrnoException).code ?? 'EINVAL');
      return { closeOutput: () => undefined };
    }
    followStreams(child, events);
    if (child.pid === undefined) {
      child.once('error', (err: NodeJS.ErrnoException) => events.failed(err.code ?? 'EINVAL'));
      return { closeOutput: () => undefined };
    }
    this.clock.spawned();
    // Set from outside after the fork, so whatever it started before this line keeps this
    // process's niceness; only the replica's fallback spawns come here with one (the helper forks
    // already niced).
    if (this.nice > 0) lowerPriority(child.pid, this.nice);
    // Read now, before this process can reap it: a job that already exited is still a zombie here.
    events.started({ pid: child.pid, leader: readStat(child.pid), mark });
    child.on('error', (err: NodeJS.ErrnoException) => events.error(err.code ?? 'EINVAL'));
    child.once('exit', (code, signal) => events.exit(code, signal));
    return {
      closeOutput: () => {
        child.stdout?.destroy();
        child.stderr?.destroy();
      },
    };
  }
}

/** `nice` as JOBS_NICE allows it (0-19), for every spawner; a RangeError naming the variable otherwise. */
export function checkNice(nice: number): number {
  if (!Number.isInteger(nice) || nice < 0 || nice > 19)
    throw new RangeError(`the spawner's nice must be an integer from 0 to 19 (JOBS_NICE), got ${nice}`);
  return nice;
}

/** Sets `pid` to `nice` unless it already runs nicer (as root, a smaller number would raise it). */
function lowerPriority(pid: number, nice: number): void {
  try {
    if (nice > getPriority(pid)) setPriority(pid, nice);
  } catch {
    // Gone already (ESRCH): nothing left to slow down.
  }
}

/** The request with its cgroup joined by a `/bin/sh` in front of the job (cgroupSpawnArgs). */
export function throughShell(req: SpawnRequest): SpawnRequest {
  if (!req.cgroup) return req;
  const [file, args] = cgroupSpawnArgs(req.cgroup.dir, req.file, req.args, !!req.shell, {
    cwd: req.cwd,
    path: req.env.PATH,
  });
  return { ...req, file, args, cgroup: undefined };
}

/** Passes a job's output streams on to `events` (the child's, or sockets on its pipes). */
export function followStreams(child: Pick<ChildProcess, 'stdout' | 'stderr'>, events: SpawnEvents): void {
  for (const kind of STREAMS) {
    const stream = child[kind];
    if (!stream) {
      events.end(kind);
      continue;
    }
    stream.on('data', (chunk: Buffer) => events.data(kind, chunk));
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      events.end(kind);
    };
    stream.once('end', end);
    stream.once('error', end);
  }
}

interface HelperJob {
  ev: SpawnEvents;
  /** As asked, to spawn it again should the helper end before it took the request. */
  req: SpawnRequest;
  /** The helper moves for it: the gap since the spawn before (CgroupMoveWindow.observe). */
  moveGap: number | null;
  exited: boolean;
  ended: [boolean, boolean];
}

/** Messages from the helper process (see spawnerMain). */
type HelperMessage =
  | { t: 'ready' }
  | {
      t: 'started';
      id: number;
      pid: number;
      stat: string | null;
      last: number | null;
      at: number;
      own: number;
      /** 1: forked while the helper was in the job's cgroup. */
      cg?: 1;
      /** How long the helper's move into the job's cgroup took, in µs, less any wait for a CPU (when it moved). */
      mv?: number;
    }
  | { t: 'failed'; id: number; code: string }
  | { t: 'error'; id: number; code: string }
  | { t: 'data'; id: number; k: 0 | 1; b: Uint8Array }
  | { t: 'end'; id: number; k: 0 | 1 }
  | { t: 'exit'; id: number; code: number | null; signal: string | null; ended: (0 | 1)[] };

/**
 * The helper's spawn count as this process knows it, kept monotonic across helper restarts.
 * Every reading it gives can only be behind the helper's real count, never ahead, so
 * quietSince() can fail to hold but never hold falsely; a mark() is only given while no spawn
 * request is unanswered (only then is the count known exactly at the reading).
 */
export class HelperPidClock extends PidClock {
  /** Spawn requests sent and not yet answered (started or failed). */
  inFlight = 0;
  /** What the current helper's count 0 stands for here. */
  base = 0;

  override mark(): PidMark | null {
    return this.inFlight > 0 ? null : super.mark();
  }

  /** The helper reported `helperOwn` spawns so far. */
  observe(helperOwn: number): void {
    this.own = Math.max(this.own, this.base + helperOwn);
  }

  /** A new helper: its count starts at 0, ours continues. */
  restart(): void {
    this.base = this.own;
  }

  get count(): number {
    return this.own;
  }
}

export interface HelperSpawnerOptions {
  onWarn?: (msg: string, extra?: Record<string, unknown>) => void;
  /** How long a new helper may take to say it is ready before it is ended. */
  startTimeoutMs?: number;
  /** When the helper moves into a job's cgroup for the fork instead of a shell doing so. */
  moveWindow?: CgroupMoveWindow;
  /**
   * CPU niceness (0-19) of the helper, and so of every job it forks (a child inherits its
   * parent's); default 0, the replica's own. Background work then yields the CPU to the agents.
   */
  nice?: number;
}

/**
 * Spawns job processes from a small long-lived helper process (issue #15 §2). Forking the replica
 * itself costs a copy of the page tables of a ≈ 130 MB Node process per job and blocks its event
 * loop until the child has exec'd; the helper is a bare Node process that does nothing else, so
 * the fork is cheaper and the wait is off the replica's loop. Where the build compiled the spawn
 * addon, a replica needs no helper: NativeSpawner starts jobs without a fork. Jobs are the helper's children: it
 * forwards their output, exit status and the pid clock readings containment needs; signals go
 * from here to their process groups directly, as before. The helper ends when this process does
 * (its IPC channel closes); jobs live on in their own groups, exactly as when this process dies.
 * Should the helper die, its running jobs end `lost` (their groups are swept) and the next spawn
 * starts a new helper; while none can be started, jobs are spawned in process.
 */
export class HelperSpawner implements Spawner {
  readonly clock = new HelperPidClock();
  private helper: ChildProcess | undefined;
  private ready = false;
  private queue: { id: number; msg: Record<string, unknown> }[] = [];
  /** Jobs it spawns or runs for us, until their exit and the end of both streams were passed on. */
  private readonly jobs = new Map<number, HelperJob>();
  private nextId = 1;
  private closed = false;
  private readonly fallback: InProcessSpawner;
  /** Consecutive helper starts that ended before it was ready: past a few, spawn in process. */
  private failedStarts = 0;
  private readonly onWarn: HelperSpawnerOptions['onWarn'];
  private readonly startTimeoutMs: number;
  private readonly moveWindow: CgroupMoveWindow;
  private readonly nice: number;

  constructor(options: HelperSpawnerOptions = {}) {
    this.onWarn = options.onWarn;
    this.startTimeoutMs = options.startTimeoutMs ?? HELPER_START_TIMEOUT_MS;
    this.moveWindow = options.moveWindow ?? new CgroupMoveWindow();
    this.nice = checkNice(options.nice ?? 0);
    this.fallback = new InProcessSpawner(this.nice);
  }

  /** The helper's pid (undefined until it was started). */
  get pid(): number | undefined {
    return this.helper?.pid;
  }

  /** Starts the helper now and resolves once it takes requests (false: it could not start). */
  start(): Promise<boolean> {
    const helper = this.ensure();
    if (!helper) return Promise.resolve(false);
    if (this.ready) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        helper.off('message', onMsg);
        helper.off('exit', onExit);
        resolve(ok);
      };
      const onMsg = (m: HelperMessage) => m.t === 'ready' && done(true);
      const onExit = () => done(false);
      helper.on('message', onMsg);
      helper.once('exit', onExit);
    });
  }

  spawn(req: SpawnRequest, events: SpawnEvents): SpawnedProcess {
    if (this.closed || !this.ensure()) return this.fallback.spawn(req, events);
    const id = this.nextId++;
    // The helper moves itself into the job's cgroup for the fork when it knows where to return
    // and a move is cheap now (see CgroupMoveWindow).
    const moveGap = req.cgroup
      ? this.moveWindow.decide(performance.now(), req.cgroup.home !== undefined)
      : null;
    this.jobs.set(id, { ev: events, req, moveGap, exited: false, ended: [false, false] });
    this.clock.inFlight++;
    const placed = moveGap !== null ? req : throughShell(req);
    const cgroup = placed.cgroup && {
      procs: join(placed.cgroup.dir, 'cgroup.procs'),
      home: join(placed.cgroup.home!, 'cgroup.procs'),
    };
    this.send(id, { t: 'spawn', id, ...placed, cgroup });
    this.refresh();
    return {
      closeOutput: () => {
        if (!this.jobs.delete(id)) return;
        this.send(id, { t: 'close', id });
        this.refresh();
      },
    };
  }

  /** Ends the helper (jobs still running lose their parent, as at a replica's exit). */
  close(): void {
    this.closed = true;
    this.helper?.disconnect();
  }

  private send(id: number, msg: Record<string, unknown>): void {
    if (!this.ready) {
      this.queue.push({ id, msg });
      return;
    }
    this.helper!.send(msg);
  }

  /** The helper keeps this process alive only while it starts or runs jobs for it. */
  private refresh(): void {
    const channel = this.helper?.channel as { ref?: () => void; unref?: () => void } | undefined;
    if (this.jobs.size || !this.ready) channel?.ref?.();
    else channel?.unref?.();
  }

  private ensure(): ChildProcess | undefined {
    if (this.helper) return this.helper;
    if (this.failedStarts >= 3) return undefined;
    let helper: ChildProcess;
    try {
      // The program arrives on stdin (`node -`): no file to find, in dist/ or in the sources.
      // One V8 worker thread instead of one per core: the helper runs little JS, and a move
      // between cgroups (CgroupMoveWindow) costs per thread (7 threads 0.17 ms, 4: 0.10).
      helper = spawn(process.execPath, ['--v8-pool-size=1', '-', String(this.nice)], {
        stdio: ['pipe', 'inherit', 'inherit', 'ipc'],
        serialization: 'advanced',
        // Nothing of the replica's environment (its Redis URL, tokens): each job brings its own.
        env: {},
      });
      helper.stdin!.end(`(${spawnerMain.toString()})();\n`);
    } catch (err) {
      this.failedStarts++;
      this.onWarn?.('could not start the job spawner process: spawning in process', { err: String(err) });
      return undefined;
    }
    this.helper = helper;
    this.ready = false;
    this.clock.restart();
    helper.on('message', (m: HelperMessage) => this.onMessage(m));
    helper.on('error', (err) => this.onWarn?.('job spawner process error', { err: err.message }));
    helper.once('exit', (code, signal) => this.onHelperExit(helper, code, signal));
    // A helper that never says it is ready would hold its queued jobs for ever: it is ended, and
    // its jobs go to the next helper (or in process).
    const startTimer = setTimeout(() => {
      if (this.helper === helper && !this.ready) helper.kill('SIGKILL');
    }, this.startTimeoutMs);
    startTimer.unref();
    helper.once('exit', () => clearTimeout(startTimer));
    helper.unref();
    this.refresh();
    return helper;
  }

  private onMessage(m: HelperMessage): void {
    if (m.t === 'ready') {
      this.ready = true;
      this.failedStarts = 0;
      const queued = this.queue;
      this.queue = [];
      for (const { msg } of queued) this.helper!.send(msg);
      this.refresh();
      return;
    }
    const job = this.jobs.get(m.id);
    if (!job) return;
    const { ev } = job;
    switch (m.t) {
      case 'started': {
        this.clock.inFlight--;
        this.clock.observe(m.own);
        if (job.moveGap !== null && m.mv !== undefined) this.moveWindow.observe(job.moveGap, m.mv / 1000);
        const mark = m.last === null ? null : { last: m.last, own: this.clock.base + m.own - 1, at: m.at };
        ev.started({
          pid: m.pid,
          leader: m.stat === null ? null : parseStat(m.pid, m.stat),
          mark,
          bornInCgroup: m.cg === 1,
        });
        break;
      }
      case 'failed':
        this.clock.inFlight--;
        this.jobs.delete(m.id);
        this.refresh();
        ev.failed(m.code);
        break;
      case 'error':
        ev.error(m.code);
        break;
      case 'data':
        ev.data(STREAMS[m.k], Buffer.from(m.b.buffer, m.b.byteOffset, m.b.byteLength));
        break;
      case 'end':
        this.ended(m.id, job, m.k);
        break;
      case 'exit':
        for (const k of m.ended) this.ended(m.id, job, k);
        job.exited = true;
        this.forgetIfDone(m.id, job);
        ev.exit(m.code, m.signal);
        break;
    }
  }

  private ended(id: number, job: HelperJob, k: 0 | 1): void {
    if (job.ended[k]) return;
    job.ended[k] = true;
    this.forgetIfDone(id, job);
    job.ev.end(STREAMS[k]);
  }

  private forgetIfDone(id: number, job: HelperJob): void {
    if (!job.exited || !job.ended[0] || !job.ended[1]) return;
    this.jobs.delete(id);
    this.refresh();
  }

  private onHelperExit(helper: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.helper !== helper) return;
    this.helper = undefined;
    const wasReady = this.ready;
    this.ready = false;
    if (!wasReady) this.failedStarts++;
    const how = signal ? `killed by ${signal}` : `exit code ${code}`;
    if (!this.closed) this.onWarn?.('job spawner process ended', { how, jobs: this.jobs.size });
    // Requests it never answered: whether they forked is unknown, so the clock stays unproven
    // (their pids count as foreign); the jobs are spawned again by a new helper or in process.
    const queued = this.queue;
    this.queue = [];
    const pending = [...this.jobs];
    this.jobs.clear();
    this.clock.inFlight = 0;
    for (const [id, { ev, req, exited, ended }] of pending) {
      if (exited) {
        // Over already: only the rest of its output is lost with the helper.
        for (const k of [0, 1] as const) if (!ended[k]) ev.end(STREAMS[k]);
        continue;
      }
      if (queued.some((q) => q.id === id && q.msg.t === 'spawn')) {
        this.spawn(req, ev);
        continue;
      }
      // Its parent is gone, so its exit status is too; the caller sweeps what is left of it.
      for (const k of [0, 1] as const) if (!ended[k]) ev.end(STREAMS[k]);
      ev.exit(
        null,
        null,
        `the job-coordinator's spawner process (its parent) ended (${how}): its exit status is unknown`,
      );
    }
  }
}

/**
 * The helper's whole program, sent as source text to `node -`: it must use nothing from this
 * module's scope. One message per request in, a few per job out. Output is forwarded as it comes;
 * while more than 1 MiB of it waits to be taken by the replica, every job's output is paused.
 */
export function spawnerMain(): void {
  const cp = require('node:child_process') as typeof import('node:child_process');
  const fs = require('node:fs') as typeof import('node:fs');
  // Fits comm's 15 bytes, so ps and /proc/<pid>/comm show it whole.
  process.title = 'coordbus-spawn';
  // Niced before its first fork: every job inherits it from the thread that forks it, this one.
  // Only ever lower: a replica already running nicer than that keeps its own (as root, setting
  // the number would raise the jobs above the replica instead).
  const os = require('node:os') as typeof import('node:os');
  const nice = Number(process.argv[2] ?? 0);
  if (nice > os.getPriority()) {
    try {
      os.setPriority(nice);
    } catch (err) {
      process.stderr.write(
        `coordbus-spawn: cannot set niceness ${nice} (${String(err)}): jobs run at the replica's\n`,
      );
    }
  }
  const buf = Buffer.alloc(4096);
  const read = (path: string): string | null => {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch {
      return null;
    }
    try {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      return buf.toString('utf8', 0, n);
    } catch {
      return null;
    } finally {
      fs.closeSync(fd);
    }
  };
  /** Time this thread has waited on a run queue so far (ns; /proc schedstat), null without it. */
  const runqueueWaitNs = (): number | null => {
    const text = read('/proc/thread-self/schedstat');
    const wait = text === null ? NaN : Number(text.split(' ')[1]);
    return Number.isFinite(wait) ? wait : null;
  };
  let own = 0;
  // The way back from a job's cgroup, kept open: it is the same for every job.
  let homeFd: number | undefined;
  let homePath: string | undefined;
  const children = new Map<number, import('node:child_process').ChildProcess>();
  let waiting = 0;
  let paused = false;
  const setPaused = (p: boolean) => {
    paused = p;
    for (const c of children.values()) {
      for (const s of [c.stdout, c.stderr]) {
        if (p) s?.pause();
        else s?.resume();
      }
    }
  };
  const send = (msg: Record<string, unknown>, bytes = 0) => {
    if (!process.connected) return;
    waiting += bytes;
    if (waiting > 1 << 20 && !paused) setPaused(true);
    process.send!(msg, undefined, undefined, () => {
      waiting -= bytes;
      if (paused && waiting < 1 << 18) setPaused(false);
    });
  };
  // The replica is gone: so is its spawner (its jobs live on in their own groups).
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: Record<string, unknown> & { id: number }) => {
    if (m.t === 'close') {
      const c = children.get(m.id);
      c?.stdout?.destroy();
      c?.stderr?.destroy();
      children.delete(m.id);
      return;
    }
    if (m.t !== 'spawn') return;
    const id = m.id;
    // Read just before the fork, with the exact count of spawns so far (see PidClock).
    const lastText = read('/proc/sys/kernel/ns_last_pid');
    const last = lastText === null ? null : Number(lastText.trim());
    const at = Date.now();
    // Born in its cgroup: this process moves into it for the fork (a child starts in its
    // parent's cgroup) and straight back. A move in that fails leaves the job outside, as a
    // shell's failed write would; staying inside is not an option (the job's end would end this
    // process with it): without a way back, this process exits and its jobs end as lost.
    const cgroup = m.cgroup as { procs: string; home: string } | undefined;
    let moved = false;
    let moveUs: number | undefined;
    if (cgroup) {
      try {
        const wait0 = runqueueWaitNs();
        const t0 = process.hrtime.bigint();
        fs.writeFileSync(cgroup.procs, `${process.pid}\n`);
        const wallNs = Number(process.hrtime.bigint() - t0);
        const wait1 = runqueueWaitNs();
        // What the move itself took, not the time this process was preempted meanwhile: on a busy
        // machine that was most of the wall time, and would have read as a stall.
        moveUs = (wallNs - (wait0 !== null && wait1 !== null ? Math.min(wallNs, wait1 - wait0) : 0)) / 1000;
        moved = true;
      } catch {
        /* outside: process groups and the sweep still contain it */
      }
    }
    const leave = () => {
      if (!moved) return;
      moved = false;
      try {
        if (homeFd === undefined || homePath !== cgroup!.home) {
          if (homeFd !== undefined) fs.closeSync(homeFd);
          homeFd = undefined;
          homeFd = fs.openSync(cgroup!.home, 'w');
          homePath = cgroup!.home;
        }
        fs.writeSync(homeFd, `${process.pid}\n`);
      } catch (err) {
        process.stderr.write(`coordbus-spawn: cannot leave a job cgroup (${String(err)}): exiting\n`);
        process.exit(70);
      }
    };
    let child: import('node:child_process').ChildProcess;
    try {
      child = cp.spawn(m.file as string, m.args as string[], {
        cwd: m.cwd as string,
        env: m.env as NodeJS.ProcessEnv,
        detached: true,
        stdio: [m.stdin == null ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      });
    } catch (err) {
      leave();
      send({ t: 'failed', id, code: (err as NodeJS.ErrnoException).code ?? 'EINVAL' });
      return;
    }
    const born = moved;
    leave();
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(m.stdin as string | undefined);
    if (child.pid === undefined) {
      child.once('error', (err: NodeJS.ErrnoException) =>
        send({ t: 'failed', id, code: err.code ?? 'EINVAL' }),
      );
      return;
    }
    own++;
    children.set(id, child);
    // Kept until it exited and both streams ended: a `close` may still come for its pipes.
    let open = 3;
    const settle = () => --open === 0 && children.delete(id);
    // Read before this process can reap it: a job that already exited is still a zombie here.
    send({
      t: 'started',
      id,
      pid: child.pid,
      stat: read(`/proc/${child.pid}/stat`),
      last: Number.isInteger(last) ? last : null,
      at,
      own,
      ...(born ? { cg: 1, mv: moveUs } : {}),
    });
    // One message for the usual end (exit and both streams at their end) instead of three: the
    // exit waits up to 20 ms for the streams, and names those that ended before it.
    const ended = [false, false];
    let exit: { code: number | null; signal: string | null } | null = null;
    let exitSent = false;
    let exitTimer: NodeJS.Timeout | undefined;
    const sendExit = () => {
      if (exitSent || !exit) return;
      exitSent = true;
      clearTimeout(exitTimer);
      send({ t: 'exit', id, ...exit, ended: [0, 1].filter((k) => ended[k]) });
    };
    [child.stdout, child.stderr].forEach((s, k) => {
      if (!s) {
        ended[k] = true;
        return settle();
      }
      if (paused) s.pause();
      s.on('data', (b: Buffer) => send({ t: 'data', id, k, b }, b.length));
      const end = () => {
        if (ended[k]) return;
        ended[k] = true;
        if (exitSent) send({ t: 'end', id, k });
        else if (ended[0] && ended[1]) sendExit();
        settle();
      };
      s.once('end', end);
      s.once('error', end);
    });
    child.on('error', (err: NodeJS.ErrnoException) => send({ t: 'error', id, code: err.code ?? 'EINVAL' }));
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      if (ended[0] && ended[1]) sendExit();
      else exitTimer = setTimeout(sendExit, 20);
      settle();
    });
  });
  send({ t: 'ready' });
}
