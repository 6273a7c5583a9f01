import { existsSync } from 'node:fs';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import { join } from 'node:path';
import { findExecutable, missingExecutable } from './cgroup';
import { pidClock, readStat } from './containment';
import { CgroupMoveWindow } from './move-window';
import {
  checkNice,
  followStreams,
  throughShell,
  type SpawnedProcess,
  type SpawnEvents,
  type Spawner,
  type SpawnRequest,
} from './spawner';

/** libs/jobs/native/spawn.c, as `npm run build` compiles it. */
interface SpawnAddon {
  spawn(
    file: string,
    argv: string[],
    envp: string[],
    cwd: string,
    pipeStdin: boolean,
    cgroupProcs: string | null,
    nice: number,
  ): number | [pid: number, stdin: number, stdout: number, stderr: number, joined: number, joinUs: number];
  reap(pid: number): null | number | [code: number | null, signal: number | null];
  onExit(listener: (pid: number) => void): void;
}

/**
 * The spawners of each loaded addon, all told when one of its children exited: one onExit listener
 * per loaded addon (the addon keeps every listener it is given for the life of the process).
 */
const spawnersOf = new WeakMap<SpawnAddon, Set<NativeSpawner>>();

/** Where `npm run build` puts the spawn addon; undefined when it was not built. */
export function spawnAddonPath(): string | undefined {
  // Beside this file in dist/; from the sources (ts-jest), the one the build made.
  const candidates = [
    join(__dirname, '..', '..', 'native', 'coordbus_spawn.node'),
    join(__dirname, '..', '..', '..', '..', 'dist', 'libs', 'jobs', 'native', 'coordbus_spawn.node'),
  ];
  return candidates.find((path) => existsSync(path));
}

const signalNames = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name]));
const errnoNames = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));

export interface NativeSpawnerOptions {
  /** CPU niceness (0-19) each job is given before its exec, never raising it; 0: this process's own. */
  nice?: number;
  /**
   * When a job joins its cgroup itself before its exec (this process waits for that) instead of
   * a `/bin/sh` in front of it doing so: after a quiet spell a join can wait milliseconds.
   */
  moveWindow?: CgroupMoveWindow;
}

/** How often exits are looked for besides the addon's notices (a missed one costs at most this). */
const REAP_POLL_MS = 1000;

/**
 * Starts jobs from this process without forking it (the spawn addon: a vfork-style clone, so no
 * page tables are copied however large this process is). A job joins its cgroup itself before its
 * exec, so it is born there with nothing in front of it, while joins are cheap (CgroupMoveWindow:
 * after a quiet spell a `/bin/sh` in front joins instead, so this process does not wait). Exits
 * are reaped with waitpid for the pids started here, when the addon says one exited, and by a poll
 * while any runs.
 */
export class NativeSpawner implements Spawner {
  readonly clock = pidClock;
  /** Started here and not reaped yet: what to tell when each exits. */
  private readonly running = new Map<number, SpawnEvents['exit']>();
  private poll: NodeJS.Timeout | undefined;
  private readonly nice: number;
  private readonly moveWindow: CgroupMoveWindow;

  constructor(
    private readonly addon: SpawnAddon,
    options: NativeSpawnerOptions = {},
  ) {
    this.nice = checkNice(options.nice ?? 0);
    this.moveWindow = options.moveWindow ?? new CgroupMoveWindow();
    let spawners = spawnersOf.get(addon);
    if (!spawners) {
      const all = new Set<NativeSpawner>();
      addon.onExit(() => {
        for (const spawner of all) spawner.reapAll();
      });
      spawnersOf.set(addon, (spawners = all));
    }
    spawners.add(this);
  }

  /** The spawner, or why there is none here (no addon built, or it did not load). */
  static open(
    options: NativeSpawnerOptions & { addon?: string } = {},
  ): NativeSpawner | { unavailable: string } {
    const path = options.addon ?? spawnAddonPath();
    if (!path)
      return {
        unavailable: 'no spawn addon: npm run build compiles it where a C compiler (cc) is installed',
      };
    let addon: SpawnAddon;
    try {
      addon = require(path) as SpawnAddon;
    } catch (err) {
      return { unavailable: `the spawn addon ${path} did not load: ${String(err)}` };
    }
    return new NativeSpawner(addon, options);
  }

  spawn(request: SpawnRequest, events: SpawnEvents): SpawnedProcess {
    const none = { closeOutput: () => undefined };
    // The job joins its cgroup itself when that is cheap now, else a shell in front of it does.
    const gap = request.cgroup ? this.moveWindow.decide(performance.now()) : null;
    const req = request.cgroup && gap === null ? throughShell(request) : request;
    const argv = [req.file, ...req.args];
    const envp = Object.entries(req.env)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => `${key}=${value}`);
    // What child_process refuses before it forks.
    if ([req.cwd, ...argv, ...envp].some((text) => text.includes('\u0000'))) {
      events.failed('ERR_INVALID_ARG_VALUE');
      return none;
    }
    const file = findExecutable(req.file, req.cwd, req.env.PATH);
    if (file === undefined) {
      events.failed(missingExecutable(req.file, req.cwd, req.env.PATH));
      return none;
    }
    const procs = req.cgroup ? join(req.cgroup.dir, 'cgroup.procs') : null;
    this.keepPolling();
    // Read before the start: if no other process is created after it, the job forked nothing.
    const mark = this.clock.mark();
    const start = (path: string, args: string[]) =>
      this.addon.spawn(path, args, envp, req.cwd, req.stdin != null, procs, this.nice);
    let started = start(file, argv);
    // An executable text without `#!`: run by /bin/sh, as execvp (and so child_process) does.
    if (started === constants.errno.ENOEXEC) started = start('/bin/sh', ['/bin/sh', file, ...req.args]);
    if (typeof started === 'number') {
      events.failed(errnoNames.get(started) ?? 'EINVAL');
      return none;
    }
    const [pid, stdinFd, stdoutFd, stderrFd, joined, joinUs] = started;
    if (gap !== null && joined === 1) this.moveWindow.observe(gap, joinUs / 1000);
    this.clock.spawned();
    this.running.set(pid, events.exit);
    // Read now, before it can be reaped: a job that already exited is still a zombie here.
    events.started({ pid, leader: readStat(pid), mark, bornInCgroup: joined === 1 });
    if (stdinFd >= 0 && req.stdin != null) {
      const stdin = new Socket({ fd: stdinFd, readable: false, writable: true });
      // A job that never reads its stdin (or exits first) must not fail the runner with EPIPE.
      stdin.on('error', () => undefined);
      stdin.end(req.stdin);
    }
    const stdout = new Socket({ fd: stdoutFd, readable: true, writable: false });
    const stderr = new Socket({ fd: stderrFd, readable: true, writable: false });
    followStreams({ stdout, stderr }, events);
    return {
      closeOutput: () => {
        stdout.destroy();
        stderr.destroy();
      },
    };
  }

  /**
   * Stops following its jobs (a replica's shutdown): they live on in their own groups, as when
   * this process dies, and their exits are no longer told.
   */
  close(): void {
    this.running.clear();
    clearInterval(this.poll);
    this.poll = undefined;
    spawnersOf.get(this.addon)?.delete(this);
  }

  /** Also what keeps this process alive while a job runs (the addon's notices do not). */
  private keepPolling(): void {
    this.poll ??= setInterval(() => this.reapAll(), REAP_POLL_MS);
  }

  private reapAll(): void {
    // A notice names one pid, but asking after each is as cheap and catches any missed.
    for (const [pid, exit] of this.running) {
      const status = this.addon.reap(pid);
      if (status === null) continue;
      this.running.delete(pid);
      if (typeof status === 'number')
        exit(
          null,
          null,
          `its exit status was taken by another waiter in this process (${errnoNames.get(status)})`,
        );
      else exit(status[0], status[1] === null ? null : (signalNames.get(status[1]) ?? `signal ${status[1]}`));
    }
    if (this.running.size === 0 && this.poll) {
      clearInterval(this.poll);
      this.poll = undefined;
    }
  }
}
