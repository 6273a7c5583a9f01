import { hostname } from 'node:os';
import type Redis from 'ioredis';
import { newUlid } from '@coordbus/envelope';
import type { JobKeys } from '../store/job-store';
import { processStartTime } from './proc';

/** Heartbeat TTL of a runner: another host treats a runner whose key expired as gone. */
export const RUNNER_TTL_MS = 15_000;

/**
 * Who runs jobs: a coordinator replica or a CLI running a foreground job. Recorded on each job
 * (host, pid, process start time) so a reconcile on the same host can tell exactly whether the
 * runner is alive, and refreshed as a TTL key so other hosts can tell too.
 */
export class RunnerIdentity {
  readonly host = hostname();
  readonly pid = process.pid;
  readonly start = processStartTime(process.pid);
  readonly id: string;
  private timer: NodeJS.Timeout | undefined;

  constructor(kind: 'replica' | 'cli') {
    this.id = `${kind}:${this.host}:${this.pid}:${newUlid().slice(-8)}`;
  }

  /** Keeps the runner's liveness key fresh until stop(). */
  startHeartbeat(redis: Redis, keys: JobKeys, onError?: (err: unknown) => void): Promise<void> {
    const beat = () =>
      redis
        .set(keys.runner(this.id), String(Date.now()), 'PX', RUNNER_TTL_MS)
        .then(() => undefined)
        .catch((err: unknown) => onError?.(err));
    this.timer = setInterval(() => void beat(), RUNNER_TTL_MS / 3);
    this.timer.unref();
    return beat();
  }

  async stopHeartbeat(redis: Redis, keys: JobKeys): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await redis.del(keys.runner(this.id)).catch(() => undefined);
  }
}
