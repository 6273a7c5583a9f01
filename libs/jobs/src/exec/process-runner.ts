import { spawn } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import { processStartTime, killGroup } from './proc';
import type { ProcessEnd } from '../domain/outcome';

export interface RunRequest {
  argv: string[];
  shell: boolean;
  cwd: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number | null;
  killGraceMs: number;
  onLine: (kind: 'stdout' | 'stderr', line: string) => void;
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
    killGroup(pgid, 'SIGTERM');
    // SIGKILL the group after the grace even if the leader exited: its children may linger.
    this.killTimer = setTimeout(() => {
      try {
        killGroup(pgid, 'SIGKILL');
      } catch {
        /* reported by the first signal already */
      }
    }, this.req.killGraceMs);
    this.killTimer.unref();
  }

  private start(): Promise<ProcessEnd> {
    const { req } = this;
    return new Promise<ProcessEnd>((resolve) => {
      const [file, ...args] = req.shell ? ['/bin/sh', '-c', req.argv.join(' ')] : req.argv;
      let child;
      try {
        // detached: the child leads a new process group, so cancel/timeout can kill everything it started.
        child = spawn(file, args, {
          cwd: req.cwd,
          env: req.env,
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      } catch (err) {
        resolve({
          exitCode: null,
          signal: null,
          cancelled: false,
          timedOut: false,
          spawnError: (err as NodeJS.ErrnoException).code ?? 'EINVAL',
        });
        return;
      }
      let spawnError: string | undefined;
      let timeout: NodeJS.Timeout | undefined;
      const streams = [pump(child.stdout, 'stdout', req.onLine), pump(child.stderr, 'stderr', req.onLine)];
      child.on('error', (err: NodeJS.ErrnoException) => {
        spawnError = err.code ?? 'EINVAL';
      });
      if (child.pid !== undefined) {
        this.pid = child.pid;
        const startTime = processStartTime(child.pid);
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
        void req.onStart?.({ pid: child.pid, startTime });
      }
      let finished = false;
      const finish = (end: ProcessEnd) => {
        if (finished) return;
        finished = true;
        clearTimeout(timeout);
        resolve(end);
      };
      if (child.pid === undefined) {
        child.once('error', (err: NodeJS.ErrnoException) =>
          finish({
            exitCode: null,
            signal: null,
            cancelled: false,
            timedOut: false,
            spawnError: err.code ?? 'EINVAL',
          }),
        );
        return;
      }
      child.once('exit', (code, signal) => {
        const end = () =>
          finish({
            exitCode: code,
            signal: signal ?? null,
            cancelled: this.cancelled,
            timedOut: this.timedOut,
            spawnError,
          });
        // A grandchild that inherited stdout can hold the pipe open long after the job exited:
        // wait briefly for the rest of the output, then stop reading.
        const bound = setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
          end();
        }, 2000);
        void Promise.all(streams).then(() => {
          clearTimeout(bound);
          end();
        });
      });
    });
  }
}

/** Splits a stream into lines (a trailing partial line is emitted at the end). */
function pump(
  stream: Readable | null,
  kind: 'stdout' | 'stderr',
  onLine: RunRequest['onLine'],
): Promise<void> {
  if (!stream) return Promise.resolve();
  const decoder = new StringDecoder('utf8');
  let pending = '';
  return new Promise((resolve) => {
    stream.on('data', (chunk: Buffer) => {
      pending += decoder.write(chunk);
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        onLine(kind, pending.slice(0, nl).replace(/\r$/, ''));
        pending = pending.slice(nl + 1);
      }
    });
    const end = () => {
      pending += decoder.end();
      if (pending) onLine(kind, pending);
      pending = '';
      resolve();
    };
    stream.once('end', end);
    stream.once('error', end);
  });
}
