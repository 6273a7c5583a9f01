import type { Cluster, default as Redis } from 'ioredis';
import type { Keyspace } from '@coordbus/envelope';
import type { JobStore } from '../store/job-store';

export type CancelHandler = () => void;

/**
 * Delivers cancel requests to whichever process runs a job. A request is recorded first in the
 * job's metadata (status `cancelling`), then announced on the control channel; pub/sub is
 * fire-and-forget, so each runner also re-reads the status of its running jobs every second and
 * acts on a `cancelling` it missed.
 */
export class CancelBus {
  private readonly handlers = new Map<string, CancelHandler>();
  private sub: Redis | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly keyspace: Keyspace,
    private readonly store: JobStore,
    private readonly sweepEveryMs = 1000,
  ) {}

  async start(): Promise<void> {
    // A Cluster (REDIS_CLUSTER=1) takes (startupNodes, options) in duplicate(), not options.
    this.sub = (this.redis as { isCluster?: boolean }).isCluster
      ? ((this.redis as unknown as Cluster).duplicate() as unknown as Redis)
      : this.redis.duplicate({ connectionName: 'job-coordinator:control' });
    this.sub.on('message', (_channel: string, message: string) => {
      try {
        const msg = JSON.parse(message) as { op?: string; ids?: unknown };
        if (msg.op === 'cancel' && Array.isArray(msg.ids)) for (const id of msg.ids) this.fire(String(id));
      } catch {
        /* not ours: ignore */
      }
    });
    this.sub.on('error', () => undefined);
    await this.sub.subscribe(this.keyspace.jobControlChannel);
    this.sweepTimer = setInterval(() => void this.sweep(), this.sweepEveryMs);
    this.sweepTimer.unref();
  }

  register(id: string, handler: CancelHandler): void {
    this.handlers.set(id, handler);
  }

  unregister(id: string): void {
    this.handlers.delete(id);
  }

  get running(): string[] {
    return [...this.handlers.keys()];
  }

  /** Runs the cancel handler of a job this process runs (no-op for others). */
  fire(id: string): void {
    const h = this.handlers.get(id);
    if (h) h();
  }

  private async sweep(): Promise<void> {
    const ids = this.running;
    if (!ids.length) return;
    try {
      const pipe = this.redis.pipeline();
      for (const id of ids) pipe.hget(this.store.keys.job(id), 'status');
      const res = (await pipe.exec()) ?? [];
      res.forEach(([err, status], i) => {
        if (!err && status === 'cancelling') this.fire(ids[i]);
      });
    } catch {
      /* Redis away: the next sweep tries again */
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.sweepTimer);
    await this.sub?.quit().catch(() => this.sub?.disconnect());
  }

  /** Announces cancel requests to every runner. */
  static publish(redis: Redis, keyspace: Keyspace, ids: string[]): Promise<number> {
    return redis.publish(keyspace.jobControlChannel, JSON.stringify({ op: 'cancel', ids }));
  }
}
