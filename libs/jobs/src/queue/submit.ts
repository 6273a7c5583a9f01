import type { Queue } from 'bullmq';
import type Redis from 'ioredis';
import { JobStatus, newUlid, UnavailableError } from '@coordbus/envelope';
import { ARGV_SECRET_KEY, scrubArgv, splitSecrets, STDIN_SECRET_KEY } from '../domain/env-scrub';
import { eventIdentity, JobMeta, JobSpec } from '../domain/job';
import { WorkspaceRegistry } from '../exec/workspace';
import type { JobStore } from '../store/job-store';
import { BULL_JOB_OPTIONS, BullJobData } from './bull-types';

/** A job as the CLI asks for it: `env` may hold secrets, which are split off before anything is stored. */
export type JobRequest = Omit<JobSpec, 'env' | 'secret_names'> & { env: Record<string, string> };

/** Builds a job's metadata; secret values are split off and returned separately. */
export function newJob(
  req: JobRequest,
  invocationId: string,
  status: JobStatus = 'queued',
): { meta: JobMeta; secrets: Record<string, string> } {
  const { plain, secrets } = splitSecrets(req.env);
  const secretValues = Object.values(secrets);
  const scrubbed = scrubArgv(req.argv, secretValues);
  const secretNames = Object.keys(secrets).sort();
  // The real argv travels like the secret variables (in memory, or a TTL key deleted at start).
  if (scrubbed.found.length || scrubbed.argv.some((a, i) => a !== req.argv[i]))
    secrets[ARGV_SECRET_KEY] = JSON.stringify(req.argv);
  // The stdin (a hook event: tool input, prompts) is stored scrubbed the same way; the real one travels too.
  const stdin = req.stdin ? scrubArgv([req.stdin], secretValues).argv[0] : null;
  if (req.stdin && stdin !== req.stdin) secrets[STDIN_SECRET_KEY] = req.stdin;
  const meta: JobMeta = {
    ...req,
    argv: scrubbed.argv,
    stdin,
    env: plain,
    secret_names: secretNames,
    id: newUlid(),
    invocation_id: invocationId,
    status,
    exit_code: null,
    signal: null,
    reason: null,
    created_at: new Date().toISOString(),
    started_at: null,
    finished_at: null,
    host: null,
    runner_id: null,
    runner_pid: null,
    runner_start: null,
    pgid: null,
    proc_start: null,
    kill_grace_ms: null,
  };
  return { meta, secrets };
}

/**
 * Records jobs and hands background ones to the queue. A background job's secrets wait in a
 * separate key with a TTL, which the worker deletes as it starts the job: they never enter the
 * metadata, the BullMQ job, a log record or an event.
 */
export class JobSubmitter {
  constructor(
    private readonly redis: Redis,
    private readonly store: JobStore,
    private readonly queue: () => Queue<BullJobData>,
    private readonly secretTtlMs = 86_400_000,
  ) {}

  /**
   * Queues a background job, or records it `failed` at once (never queued) when replicas are
   * running and none of them can see its cwd: the returned metadata says which.
   */
  async submitBackground(meta: JobMeta, secrets: Record<string, string>): Promise<JobMeta> {
    const refusal = meta.cwd && (await new WorkspaceRegistry(this.redis, this.store.keys).refusal(meta.cwd));
    if (refusal) {
      const failed: JobMeta = {
        ...meta,
        status: 'failed',
        reason: refusal,
        finished_at: new Date().toISOString(),
      };
      await this.store.create(failed, refusal);
      return failed;
    }
    if (Object.keys(secrets).length) {
      await this.redis.set(this.store.keys.secrets(meta.id), JSON.stringify(secrets), 'PX', this.secretTtlMs);
    }
    const queue = this.queue();
    const add = () =>
      queue.add(
        'hook-job',
        { id: meta.id, event: eventIdentity(meta) },
        { ...BULL_JOB_OPTIONS, jobId: meta.id },
      );
    // On one connection Redis applies commands in the order they were sent, so the BullMQ job can
    // go out right behind the create script, one round trip instead of two: no worker can take
    // it before the metadata exists. Should the create fail, a BullMQ job without metadata is
    // dropped by the claim (missing). On another connection the order is not given: one by one.
    const created = this.store.create(meta);
    const added = queue.opts.connection === this.redis ? add() : created.then(add);
    try {
      await created;
    } catch (err) {
      added.catch(() => undefined);
      throw err;
    }
    try {
      await added;
    } catch (err) {
      const reason = `could not enqueue: ${(err as Error).message}`;
      const now = new Date().toISOString();
      await this.redis.del(this.store.keys.secrets(meta.id)).catch(() => undefined);
      await this.store
        .transition(meta.id, {
          from: ['queued'],
          to: 'failed',
          fields: { reason, finished_at: now },
          record: { ts: now, kind: 'status', status: 'failed', reason },
          event: meta,
        })
        .catch(() => undefined);
      throw new UnavailableError(reason);
    }
    return meta;
  }

  /** Records a job that will run inline (status queued until the executor claims it). */
  async recordForeground(meta: JobMeta): Promise<JobMeta> {
    await this.store.create(meta);
    return meta;
  }

  /** Records a condition-skipped job: it never runs, but `jobs ls` and the archive see it and why. */
  async recordSkipped(meta: JobMeta, reason: string): Promise<JobMeta> {
    const now = new Date().toISOString();
    const skipped: JobMeta = { ...meta, status: 'skipped', reason, finished_at: now };
    await this.store.create(skipped, reason);
    return skipped;
  }
}
