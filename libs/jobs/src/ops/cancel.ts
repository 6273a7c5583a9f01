import type { Queue } from 'bullmq';
import { InvalidError, NoMatchError, NotFoundError } from '@coordbus/envelope';
import { ACTIVE_JOB_STATUSES, hasFilter, isTerminal, JobFilter, JobMeta, matchesFilter } from '../domain/job';
import { CancelBus } from '../exec/control';
import type { BullJobData } from '../queue/bull';
import type { JobStore } from '../store/job-store';

export interface CancelRequest {
  jobId?: string;
  filter: JobFilter;
  all?: boolean;
  /** Wait for running jobs to end (default true). */
  wait?: boolean;
  /** Upper bound of that wait (default: each job's kill grace + 5 s). */
  waitMs?: number;
}

export interface CancelResult {
  /** Jobs that are cancelled (queued ones at once, running ones once their process ended). */
  cancelled: JobMeta[];
  /** Running jobs asked to stop that had not ended when the wait ran out. */
  pending: JobMeta[];
  /** Jobs that finished on their own while the cancel was in flight. */
  finished: JobMeta[];
}

/**
 * Cancels one job or every active job matching a filter (predicates AND-combined) or `all`.
 * Queued jobs become `cancelled` at once and leave the queue; running jobs become `cancelling`
 * and whichever runner holds them (any replica, or a CLI) is told on the control channel to
 * SIGTERM the process group, SIGKILL after its grace.
 */
export async function cancelJobs(
  store: JobStore,
  queue: () => Queue<BullJobData>,
  req: CancelRequest,
): Promise<CancelResult> {
  let targets: JobMeta[];
  if (req.jobId) {
    const job = await store.get(req.jobId);
    if (!job) throw new NotFoundError(`no job ${req.jobId}`, { job: req.jobId });
    if (isTerminal(job.status))
      throw new NoMatchError(`job ${job.id} (${job.name}) already ended: ${job.status}`, { job: job.id });
    targets = [job];
  } else if (hasFilter(req.filter) || req.all) {
    const now = Date.now();
    targets = (await store.list(ACTIVE_JOB_STATUSES)).filter((j) => matchesFilter(j, req.filter, now));
    if (!targets.length) throw new NoMatchError('no active job matches', { filter: req.filter });
  } else {
    throw new InvalidError('cancel needs a job id, at least one filter, or --all');
  }

  const cancelled: JobMeta[] = [];
  const finished: JobMeta[] = [];
  const signalled: JobMeta[] = [];
  for (const job of targets) {
    let status = job.status;
    for (let attempt = 0; attempt < 4; attempt++) {
      if (status === 'queued') {
        const now = new Date().toISOString();
        const reason = 'cancelled while queued';
        const r = await store.transition(job.id, {
          from: ['queued'],
          to: 'cancelled',
          fields: { reason, finished_at: now },
          record: { ts: now, kind: 'status', status: 'cancelled', reason },
          event: job,
        });
        if (r.ok) {
          await store.connection.del(store.keys.secrets(job.id));
          if (job.background)
            await queue()
              .remove(job.id)
              .catch(() => undefined);
          cancelled.push({ ...job, status: 'cancelled', reason, finished_at: now });
          break;
        }
        if (!r.status) break;
        status = r.status;
      } else if (status === 'running') {
        const r = await store.transition(job.id, {
          from: ['running'],
          to: 'cancelling',
          event: job,
          fields: { reason: 'cancel requested' },
        });
        if (r.ok) {
          signalled.push(job);
          break;
        }
        if (!r.status) break;
        status = r.status;
      } else if (status === 'cancelling') {
        signalled.push(job);
        break;
      } else {
        finished.push({ ...job, status });
        break;
      }
    }
  }
  if (signalled.length)
    await CancelBus.publish(
      store.connection,
      store.keyspace,
      signalled.map((j) => j.id),
    );

  const pending: JobMeta[] = [];
  if (signalled.length) {
    const bound = req.waitMs ?? Math.max(...signalled.map((j) => j.kill_grace_ms ?? 5000)) + 5000;
    const deadline = Date.now() + (req.wait === false ? 0 : bound);
    let waiting = signalled.map((j) => j.id);
    for (;;) {
      const now = await store.getMany(waiting);
      waiting = [];
      for (const j of now) {
        if (!isTerminal(j.status)) waiting.push(j.id);
        else if (j.status === 'cancelled') cancelled.push(j);
        else finished.push(j);
      }
      if (!waiting.length || Date.now() >= deadline) {
        pending.push(...now.filter((j) => !isTerminal(j.status)));
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { cancelled, pending, finished };
}
