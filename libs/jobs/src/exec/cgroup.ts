import { accessSync, constants, mkdirSync, readdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { readSmallProcFile } from './containment';
import { processAlive } from './proc';

/**
 * The cgroup v2 directory this process belongs to: the cgroup2 mount (`/sys/fs/cgroup`, or
 * `/sys/fs/cgroup/unified` on a hybrid host) joined with the `0::` line of /proc/self/cgroup.
 * Null where there is no cgroup2 mount or no v2 membership (a v1-only host, no /proc).
 */
export function ownCgroupDir(
  mounts: string = readOr('/proc/self/mounts'),
  membership: string = readOr('/proc/self/cgroup'),
): string | null {
  const mount = mounts
    .split('\n')
    .map((l) => l.split(' '))
    .find((f) => f[2] === 'cgroup2')?.[1];
  const line = membership.split('\n').find((l) => l.startsWith('0::'));
  if (!mount || !line) return null;
  // Mount points with spaces are octal-escaped in /proc/self/mounts.
  const dir = mount.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
  return join(dir, line.slice(3).trim()).replace(/(.)\/$/, '$1');
}

/** A pseudo-file's text (/proc, cgroupfs), '' when it cannot be read (gone, or no such file). */
function readOr(path: string): string {
  return readSmallProcFile(path) ?? '';
}

const poll = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One job's cgroup: every process the job starts is born in it (a child inherits its parent's
 * cgroup, and no unprivileged process can leave it), so its membership is exact, unlike a
 * process group, a session or a parent chain, all of which a daemon can escape.
 */
export class JobCgroup {
  /**
   * Set once it was handed back for another job: from then on this handle does nothing, so a late
   * call from the job that had it (a kill timer after its cancel) never reaches the next job.
   */
  private released = false;

  /**
   * @param recycle takes it back once it ended empty (its JobCgroups' pool); default: removed.
   * @param home the cgroup the spawner lives in (its replica's), to which a spawner that moves
   *   itself into this one for a fork returns (see {@link JobCgroup.placement}).
   */
  constructor(
    readonly dir: string,
    private readonly recycle?: (group: JobCgroup) => void,
    readonly home?: string,
  ) {}

  /** Where a spawner places a job born in this cgroup (SpawnRequest.cgroup). */
  placement(): CgroupPlacement {
    return { dir: this.dir, home: this.home };
  }

  /** This handle lets go of the directory (see `released`). */
  release(): void {
    this.released = true;
  }

  /** Moves `pid` in (with all its threads; not its existing children). */
  add(pid: number): void {
    if (this.released) throw new Error(`cgroup ${this.dir} was released`);
    writeFileSync(join(this.dir, 'cgroup.procs'), `${pid}\n`);
  }

  /** See {@link cgroupSpawnArgs}. */
  spawnArgs(
    file: string,
    args: readonly string[],
    shell: boolean,
    where: { cwd: string; path?: string } = { cwd: process.cwd(), path: process.env.PATH },
  ): [string, string[]] {
    return cgroupSpawnArgs(this.dir, file, args, shell, where);
  }

  /** The pids in it now (empty once it is gone). */
  pids(): number[] {
    if (this.released) return [];
    return readOr(join(this.dir, 'cgroup.procs')).split('\n').filter(Boolean).map(Number);
  }

  /** Whether any process is still in it (`populated` of cgroup.events; false once removed). */
  populated(): boolean {
    if (this.released) return false;
    return /^populated 1$/m.test(readOr(join(this.dir, 'cgroup.events')));
  }

  /** Sends `signal` to every member; a member gone meanwhile is not an error. */
  signal(signal: NodeJS.Signals): void {
    for (const pid of this.pids()) {
      try {
        process.kill(pid, signal);
      } catch {
        /* exited meanwhile */
      }
    }
  }

  /** SIGKILL to every member at once (cgroup.kill, Linux 5.14+), else member by member. */
  kill(): void {
    if (this.released) return;
    try {
      writeFileSync(join(this.dir, 'cgroup.kill'), '1');
    } catch {
      this.signal('SIGKILL');
    }
  }

  /** Resolves true once no process is left, false after `ms`. */
  async drained(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (this.populated()) {
      if (Date.now() >= deadline) return false;
      await poll(20);
    }
    return true;
  }

  /**
   * Ends whatever is still in it: SIGTERM, `graceMs` to exit, then SIGKILL; removes the cgroup and
   * resolves with the pids that outlived even that (none, unless the kernel refused a kill).
   */
  async end(graceMs: number): Promise<number[]> {
    if (this.released) return [];
    let left: number[] = [];
    // Not populated: no process is in it, nor can one enter but by its path (the usual end).
    if (this.populated()) {
      this.signal('SIGTERM');
      if (!(await this.drained(graceMs))) {
        this.kill();
        await this.drained(1000);
      }
      left = this.pids();
    }
    if (!left.length) {
      if (this.recycle) this.recycle(this);
      else this.remove();
    }
    return left;
  }

  remove(): void {
    if (this.released) return;
    try {
      rmdirSync(this.dir);
    } catch {
      /* still populated, or gone already */
    }
  }
}

/**
 * A job's cgroup as its spawner needs it. With `home` (the spawner's own cgroup), a spawner may
 * move itself into `dir` for the fork and back to `home` right after: a child starts in its
 * parent's cgroup, so the job is born in it with no `/bin/sh` in front (see cgroupSpawnArgs).
 */
export interface CgroupPlacement {
  dir: string;
  home?: string;
}

/**
 * What to spawn so that the job's first process joins the cgroup `dir` before any of the job's
 * own code runs: moving it after the spawn is too late, a job can fork in the first microseconds.
 * A shell job's shell writes its own pid first; a command is started through `/bin/sh`, which
 * does the same and then execs it (`exec "$@"`: same argv, same PATH lookup). A failed write
 * leaves the job running outside (process groups and the sweep still contain it). For spawners
 * that cannot place the child themselves (CgroupPlacement): the shell is one more exec per job.
 */
export function cgroupSpawnArgs(
  dir: string,
  file: string,
  args: readonly string[],
  shell: boolean,
  where: { cwd: string; path?: string } = { cwd: process.cwd(), path: process.env.PATH },
): [string, string[]] {
  const join1 = `echo $$ >${shQuote(join(dir, 'cgroup.procs'))} 2>/dev/null`;
  if (shell && file === '/bin/sh' && args[0] === '-c' && args.length === 2) {
    return ['/bin/sh', ['-c', `${join1}\n${args[1]}`]];
  }
  // A command that cannot be run is spawned as it is, so it fails the way it always has
  // (ENOENT, EACCES), not as a shell's exit 127.
  if (findExecutable(file, where.cwd, where.path) === undefined) return [file, [...args]];
  return ['/bin/sh', ['-c', `${join1}; exec "$@"`, 'sh', file, ...args]];
}

/**
 * The cgroups of one job-coordinator replica: `coordbus-jobs/<pid>` under the replica's own cgroup
 * (replicas on one host share that cgroup, so each keeps to its own directory), one child per
 * running job. Usable where cgroup v2 is mounted and writable by this process (root, a delegated
 * systemd unit, a container given its cgroup); elsewhere {@link JobCgroups.open} says why and the
 * runner relies on process groups and the sweep.
 */
export class JobCgroups {
  private seq = 0;
  /**
   * Job cgroups that ended empty, kept for the next jobs: creating and removing a cgroup is a
   * kernel operation costing ≈ 0.7 ms of the replica's event loop per job (issue #15 §2), and an
   * empty cgroup is as good as a new one (no process, and none can enter it but by its path).
   */
  private readonly free: string[] = [];
  private closed = false;

  /** @param home the replica's own cgroup, where it and its spawner live. */
  private constructor(
    readonly dir: string,
    readonly home: string,
  ) {}

  /**
   * Opens (creating) this replica's cgroup directory, after ending what replicas no longer
   * running left behind (a crash between a job's end and its cleanup; a container restarted
   * with the same pid). Resolves with the reason instead when cgroup v2 cannot be used here.
   */
  static async open(base: string | null = ownCgroupDir()): Promise<JobCgroups | { unavailable: string }> {
    if (!base) return { unavailable: 'no cgroup v2 mount (cgroup2 in /proc/self/mounts)' };
    const root = join(base, 'coordbus-jobs');
    const dir = join(root, String(process.pid));
    try {
      mkdirSync(root, { recursive: true });
    } catch (err) {
      return { unavailable: `cannot create ${root}: ${(err as NodeJS.ErrnoException).code ?? err}` };
    }
    for (const name of subdirs(root)) {
      const pid = Number(name);
      if (pid !== process.pid && Number.isInteger(pid) && pid > 0 && processAlive(pid, null)) continue;
      for (const job of subdirs(join(root, name))) await new JobCgroup(join(root, name, job)).end(0);
      new JobCgroup(join(root, name)).remove();
    }
    try {
      mkdirSync(dir);
    } catch (err) {
      return { unavailable: `cannot create ${dir}: ${(err as NodeJS.ErrnoException).code ?? err}` };
    }
    // A cgroup whose parent enables controllers cannot take a process (no internal processes),
    // and a read-only or foreign mount refuses the move: try once with a short-lived cgroup.
    const groups = new JobCgroups(dir, base);
    const probe = groups.create('probe');
    if (!probe) return { unavailable: `cannot create a cgroup under ${dir}` };
    try {
      probe.add(process.pid);
      writeFileSync(join(base, 'cgroup.procs'), `${process.pid}\n`);
    } catch (err) {
      probe.remove();
      return {
        unavailable: `cannot move a process into ${probe.dir}: ${(err as NodeJS.ErrnoException).code ?? err}`,
      };
    }
    probe.remove();
    return groups;
  }

  /**
   * An empty cgroup for one job (a kept one, unless `name` is given), or null when none can be
   * made (the job still runs).
   */
  create(name?: string): JobCgroup | null {
    const recycle = (g: JobCgroup) => this.keep(g);
    if (name === undefined) {
      const kept = this.free.pop();
      if (kept) return new JobCgroup(kept, recycle, this.home);
    }
    const dir = join(this.dir, name ?? `job-${++this.seq}`);
    try {
      mkdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return null;
    }
    return new JobCgroup(dir, name === undefined ? recycle : undefined, this.home);
  }

  private keep(group: JobCgroup): void {
    if (this.free.length >= MAX_KEPT || this.closed) return group.remove();
    // The next job gets a new handle on the directory; this one is dead from now on.
    group.release();
    this.free.push(group.dir);
  }

  /** Ends every job cgroup still here and removes the replica's directory (shutdown). */
  async close(graceMs: number): Promise<void> {
    this.closed = true;
    this.free.length = 0;
    for (const job of subdirs(this.dir)) await new JobCgroup(join(this.dir, job)).end(graceMs);
    new JobCgroup(this.dir).remove();
  }
}

/**
 * Where `findExecutable` last found each command (by cwd, PATH and name): checked first, so the usual
 * job costs one stat instead of one per PATH entry. The answer is the same (some candidate is an
 * executable file), only found sooner; a found file that went away falls back to the full search.
 */
const lastFound = new Map<string, string>();

/**
 * The executable regular file `file` names, as execvp finds it (on `path` when it has no `/`,
 * relative entries against `cwd`); undefined when there is none.
 */
export function findExecutable(file: string, cwd: string, path: string | undefined): string | undefined {
  const key = `${cwd}\0${path ?? ''}\0${file}`;
  const known = lastFound.get(key);
  if (known !== undefined && isExecutableFile(known)) return known;
  const found = candidatesOf(file, cwd, path).find(isExecutableFile);
  if (found === undefined) {
    lastFound.delete(key);
    return undefined;
  }
  if (lastFound.size >= MAX_REMEMBERED) lastFound.clear();
  lastFound.set(key, found);
  return found;
}

/** Why execvp would not start `file` (findExecutable found nothing): one exists but may not run, or none. */
export function missingExecutable(file: string, cwd: string, path: string | undefined): 'EACCES' | 'ENOENT' {
  const exists = (c: string) => statSync(c, { throwIfNoEntry: false }) !== undefined;
  return candidatesOf(file, cwd, path).some(exists) ? 'EACCES' : 'ENOENT';
}

function candidatesOf(file: string, cwd: string, path: string | undefined): string[] {
  return file.includes('/')
    ? [isAbsolute(file) ? file : resolve(cwd, file)]
    : (path ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter).map((dir) => resolve(cwd, dir || '.', file));
}

function isExecutableFile(c: string): boolean {
  // Most PATH entries miss: a stat that does not throw for those (a thrown error costs
  // ≈ 25 µs per miss, on every job), then access(X_OK) for the one that exists.
  try {
    if (!statSync(c, { throwIfNoEntry: false })?.isFile()) return false;
    accessSync(c, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Commands whose place findExecutable() remembers (a replica runs a handful of distinct ones). */
const MAX_REMEMBERED = 256;

/** Empty job cgroups a replica keeps for reuse (more than its concurrency is rarely needed). */
const MAX_KEPT = 16;

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return [];
  }
}
