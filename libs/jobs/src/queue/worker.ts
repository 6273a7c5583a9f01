import type * as BullMQ from 'bullmq';
import type Redis from 'ioredis';
import type { Keyspace } from '@coordbus/envelope';
import { ACTIVE_JOB_STATUSES } from '../domain/job';
import type { CancelBus } from '../exec/control';
import type { JobExecutor } from '../exec/job-executor';
import type { RunnerIdentity } from '../exec/runner';
import { crashJob } from '../ops/liveness';
import type { JobStore } from '../store/job-store';
import { waitOutOutage } from '../store/outage';
import type { BullJobData } from './bull';

export interface WorkerHostOptions {
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  shutdownGraceMs: number;
  onWarn?: (msg: string, extra?: Record<string, unknown>) => void;
  onJobDone?: (status: string, startLatencyMs: number | null) => void;
}

/**
 * The BullMQ side of a replica: takes background jobs off the queue and runs them through the
 * executor. maxStalledCount is 0: a job whose replica died is failed by BullMQ, never handed to
 * another replica, and marked `crashed` here (the hook job is not re-run behind the user's back).
 */
export class JobWorkerHost {
  private worker: BullMQ.Worker<BullJobData> | undefined;

  constructor(
    private readonly connection: Redis,
    private readonly keyspace: Keyspace,
    private readonly store: JobStore,
    private readonly executor: JobExecutor,
    private readonly bus: CancelBus,
    private readonly runner: RunnerIdentity,
    private readonly options: WorkerHostOptions,
  ) {}

  start(): void {
    // Required here like createJobQueue's: the CLI loads this lib's barrel, not the worker.
    const { Worker } = require('bullmq') as typeof BullMQ;
    const w = new Worker<BullJobData>(
      this.keyspace.jobQueue,
      async (job) => {
        let final;
        try {
          final = await this.executor.execute(job.data.id, { identity: job.data.event });
        } catch (err) {
          // attempts is 1: nobody will run it after this, so it must not stay queued or running.
          await this.markUnrun(job.data.id, err as Error);
          throw err;
        }
        if (final) {
          const latency = final.started_at
            ? Date.parse(final.started_at) - Date.parse(final.created_at)
            : null;
          this.options.onJobDone?.(final.status, latency);
        }
        return final?.status ?? 'missing';
      },
      {
        connection: this.connection,
        prefix: this.keyspace.bullPrefix,
        name: this.runner.id,
        concurrency: this.options.concurrency,
        maxStalledCount: 0,
        stalledInterval: this.options.stalledIntervalMs,
        lockDuration: this.options.lockDurationMs,
        removeOnComplete: { count: 0 },
        removeOnFail: { age: 86_400 },
      },
    );
    w.on('stalled', (jobId) => void this.markStalled(jobId));
    w.on('failed', (job, err) => {
      if (job?.id && /stalled/i.test(err.message)) void this.markStalled(job.id);
    });
    w.on('error', (err) => this.options.onWarn?.('bullmq worker error', { err: err.message }));
    this.worker = w;
  }

  get running(): boolean {
    return !!this.worker?.isRunning();
  }

  private readonly outage = {
    onRetry: (err: Error) => this.options.onWarn?.('waiting out a Redis outage', { err: err.message }),
  };

  private async markStalled(id: string): Promise<void> {
    try {
      // A stall is often found right after an outage (locks could not be extended): waited out too.
      await waitOutOutage(async () => {
        const job = await this.store.get(id);
        if (!job || !ACTIVE_JOB_STATUSES.includes(job.status)) return;
        await crashJob(
          this.store,
          job,
          'its coordinator replica stopped answering (BullMQ stall detection)',
          this.runner.host,
        );
      }, this.outage);
    } catch (err) {
      this.options.onWarn?.('could not mark a stalled job crashed', { job: id, err: String(err) });
    }
  }

  /**
   * A job whose run threw (an outage longer than the executor waits, or a fault) ends `failed`
   * with the error as its reason, unless it is already over or another runner holds it.
   */
  private async markUnrun(id: string, cause: Error): Promise<void> {
    try {
      await waitOutOutage(async () => {
        const job = await this.store.get(id);
        if (!job || !ACTIVE_JOB_STATUSES.includes(job.status)) return;
        if (job.runner_id && job.runner_id !== this.runner.id) return;
        if (this.bus.running.includes(id)) return;
        const reason = `the job-coordinator could not run it: ${cause.message}`;
        const now = new Date().toISOString();
        await this.store.transition(id, {
          from: ['queued', 'running', 'cancelling'],
          to: 'failed',
          fields: { reason, finished_at: now },
          record: { ts: now, kind: 'status', status: 'failed', reason },
          event: job,
          procs: job.host === this.runner.host ? { host: this.runner.host, op: 'rem' } : undefined,
        });
      }, this.outage);
    } catch (err) {
      this.options.onWarn?.('could not mark a job that failed to run', { job: id, err: String(err) });
    }
  }

  /**
   * Stops taking jobs and lets running ones finish for the shutdown grace; those still running
   * then are cancelled (SIGTERM, SIGKILL after the kill grace) and end as `cancelled`.
   */
  async close(): Promise<void> {
    if (!this.worker) return;
    const closing = this.worker.close();
    const graceOver = await Promise.race([
      closing.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), this.options.shutdownGraceMs).unref()),
    ]);
    if (graceOver) {
      for (const id of this.bus.running) {
        const job = await this.store.get(id).catch(() => null);
        if (job) {
          await this.store
            .transition(id, {
              from: ['running'],
              to: 'cancelling',
              fields: { reason: 'coordinator shutting down' },
              event: job,
            })
            .catch(() => undefined);
        }
        this.bus.fire(id);
      }
      await closing;
    }
  }
}
