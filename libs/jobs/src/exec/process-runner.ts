import type { JobCgroup, JobCgroups } from './cgroup';
import { describeSurvivors, JobProcesses, readStat, type Survivor } from './containment';
import { killGroup } from './proc';
import { InProcessSpawner, type SpawnedProcess, type Spawner } from './spawner';
import type { ProcessEnd } from '../domain/outcome';

export interface RunRequest {
  argv: string[];
  /** Written to the process's stdin, which is then closed; null = stdin is /dev/null. */
  stdin?: string | null;
  shell: boolean;
  cwd: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number | null;
  killGraceMs: number;
  /** NAME=value in the job's environment, by which a sweep recognises its escaped descendants. */
  marker?: string;
  /** Longest line kept, in bytes: the rest of a longer line is counted and dropped (see LineBounder). */
  lineMaxBytes: number;
  onLine: (kind: 'stdout' | 'stderr', line: string) => void;
  /** Where the process is forked (default: this process). */
  spawner?: Spawner;
  /** The replica's cgroups (cgroup v2): the job is born in one of its own, which ends with it. */
  cgroups?: JobCgroups;
  /** Called once the process exists (its pid leads its own process group). */
  onStart?: (info: { pid: number; startTime: string | null }) => void | Promise<void>;
}

/** A running job process: one process group, killed as a group. */
export class RunningProcess {
  private cancelled = false;
  private timedOut = false;
  private killTimer: NodeJS.Timeout | undefined;
  pid: number | undefined;
  readonly done: Promise<ProcessEnd>;
  private procs: JobProcesses | undefined;
  private cgroup: JobCgroup | null = null;

  constructor(private readonly req: RunRequest) {
    this.done = this.start();
  }

  /** SIGTERM to the group now, SIGKILL after the grace period. Throws KillFailedError. */
  cancel(): void {
    if (this.cancelled || this.timedOut) return;
    this.cancelled = true;
    this.terminate();
  }

  private terminate(): void {
    if (this.pid === undefined) return;
    const pgid = this.pid;
    // Members outside the group too (a setsid'd grandchild); the sweep at exit gets the rest.
    this.procs?.signal('SIGTERM');
    this.cgroup?.signal('SIGTERM');
    killGroup(pgid, 'SIGTERM');
    // SIGKILL the group after the grace even if the leader exited: its children may linger.
    this.killTimer = setTimeout(() => {
      try {
        this.procs?.signal('SIGKILL');
        this.cgroup?.kill();
        killGroup(pgid, 'SIGKILL');
      } catch {
        /* reported by the first signal already */
      }
    }, this.req.killGraceMs);
    this.killTimer.unref();
  }

  private start(): Promise<ProcessEnd> {
    const { req } = this;
    const spawner = req.spawner ?? inProcess;
    return new Promise<ProcessEnd>((resolve) => {
      const [command, ...commandArgs] = req.shell ? ['/bin/sh', '-c', req.argv.join(' ')] : req.argv;
      const cgroup = (this.cgroup = req.cgroups?.create() ?? null);
      let spawnError: string | undefined;
      let timeout: NodeJS.Timeout | undefined;
      let finished = false;
      const finish = (end: ProcessEnd) => {
        if (finished) return;
        finished = true;
        clearTimeout(timeout);
        resolve(end);
      };
      const lines = {
        stdout: new LineBounder(req.lineMaxBytes, (line) => req.onLine('stdout', line)),
        stderr: new LineBounder(req.lineMaxBytes, (line) => req.onLine('stderr', line)),
      };
      let open = 2;
      let streamsDone: (() => void) | undefined;
      const ended = { stdout: false, stderr: false };
      const handle: SpawnedProcess = spawner.spawn(
        {
          file: command,
          args: commandArgs,
          cwd: req.cwd,
          env: req.env,
          stdin: req.stdin ?? null,
          cgroup: cgroup?.placement(),
          shell: req.shell,
        },
        {
          started: ({ pid, leader, mark, bornInCgroup }) => {
            this.pid = pid;
            // Nothing tracked where /proc is missing (the group kill remains), nor for a job born
            // inside its cgroup: the cgroup holds everything it starts, exactly, and ends it.
            if (leader && !bornInCgroup)
              this.procs = new JobProcesses(
                leader,
                req.marker ?? `COORDBUS_JOB_PID=${pid}`,
                250,
                mark,
                spawner.clock,
              );
            if (this.cancelled) this.terminate();
            if (req.timeoutMs) {
              timeout = setTimeout(() => {
                if (this.cancelled) return;
                this.timedOut = true;
                try {
                  this.terminate();
                } catch {
                  /* the group is gone already */
                }
              }, req.timeoutMs);
            }
            void req.onStart?.({ pid, startTime: leader?.start ?? null });
          },
          failed: (code) => {
            void cgroup?.end(0);
            finish({ exitCode: null, signal: null, cancelled: false, timedOut: false, spawnError: code });
          },
          error: (code) => {
            spawnError = code;
          },
          data: (kind, chunk) => {
            if (!ended[kind]) lines[kind].push(chunk);
          },
          end: (kind) => {
            if (ended[kind]) return;
            ended[kind] = true;
            lines[kind].end();
            if (--open === 0) streamsDone?.();
          },
          exit: (code, signal, lost) => {
            // The job is over: whatever it started ends now (SIGTERM, the grace, SIGKILL).
            const swept = Promise.all([
              this.procs ? this.procs.sweep(req.killGraceMs, !!lost) : [],
              cgroup ? cgroup.end(req.killGraceMs).then(cgroupSurvivors) : [],
            ]).then(([known, held]) => [
              ...known,
              ...held.filter((h) => !known.some((k) => k.pid === h.pid)),
            ]);
            let survivors: string | undefined;
            const end = () =>
              void swept.then((left) => {
                if (left.length) survivors = describeSurvivors(left);
                finish({
                  exitCode: code,
                  signal: signal ?? null,
                  cancelled: this.cancelled,
                  timedOut: this.timedOut,
                  spawnError,
                  survivors,
                  lost,
                });
              });
            if (open === 0) return end();
            // A grandchild that inherited stdout can hold the pipe open long after the job exited:
            // wait briefly for the rest of the output, then stop reading.
            const bound = setTimeout(() => {
              ended.stdout = ended.stderr = true;
              handle.closeOutput();
              end();
            }, 2000);
            streamsDone = () => {
              clearTimeout(bound);
              end();
            };
          },
        },
      );
    });
  }
}

const inProcess = new InProcessSpawner();

function cgroupSurvivors(pids: number[]): Survivor[] {
  return pids.map((pid) => ({
    pid,
    comm: readStat(pid)?.comm ?? '?',
    why: 'still in the job cgroup after SIGKILL',
  }));
}

/** What replaces the dropped tail of an over-long line. */
export function truncationMarker(droppedBytes: number): string {
  return ` …[line truncated: ${droppedBytes} more bytes dropped]`;
}

/**
 * Splits bytes into lines holding at most `maxBytes` of each line: the rest of a longer line is
 * only counted, so memory stays bounded whatever a job prints (50 MB without a newline costs
 * `maxBytes`, not 50 MB of string). A kept line that is cut ends with truncationMarker().
 */
export class LineBounder {
  private head: Buffer[] = [];
  private headLen = 0;
  private over = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly emit: (line: string) => void,
  ) {}

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf(0x0a, pos);
      const end = nl < 0 ? chunk.length : nl;
      this.take(chunk.subarray(pos, end));
      if (nl < 0) return;
      this.line();
      pos = nl + 1;
    }
  }

  /** End of stream: a last line without a newline is still a line. */
  end(): void {
    if (this.headLen || this.over) this.line();
  }

  private take(part: Buffer): void {
    const room = this.maxBytes - this.headLen;
    if (part.length <= room) {
      if (part.length) {
        // Copied: a subarray would keep the whole 64 KiB read buffer alive.
        this.head.push(Buffer.from(part));
        this.headLen += part.length;
      }
      return;
    }
    if (room > 0) {
      this.head.push(Buffer.from(part.subarray(0, room)));
      this.headLen += room;
    }
    this.over += part.length - Math.max(room, 0);
  }

  private line(): void {
    const head = Buffer.concat(this.head, this.headLen);
    let text: string;
    if (this.over) {
      // The marker fits inside maxBytes: a cut line is never split into two records.
      const room = Buffer.byteLength(truncationMarker(this.over + head.length));
      const keep = Math.max(0, Math.min(head.length, this.maxBytes - room));
      text = head.subarray(0, keep).toString('utf8') + truncationMarker(this.over + head.length - keep);
    } else {
      text = head.toString('utf8');
      if (text.endsWith('\r')) text = text.slice(0, -1);
    }
    this.head = [];
    this.headLen = 0;
    this.over = 0;
    this.emit(text);
  }
}
