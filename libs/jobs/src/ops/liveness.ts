import type { JobMeta } from '../domain/job';
import { groupAlive, killGroup, processAlive } from '../exec/proc';
import type { JobStore } from '../store/job-store';

/**
 * Whether the process running a job (replica or CLI) is alive. On its own host this is exact
 * (pid + process start time, so a reused pid does not count); elsewhere it is the runner's
 * heartbeat key, which expires a few seconds after the runner stops refreshing it.
 */
export async function runnerAlive(store: JobStore, job: JobMeta, localHost: string): Promise<boolean> {
  if (!job.runner_id) return false;
  if (job.host === localHost && job.runner_pid) return processAlive(job.runner_pid, job.runner_start);
  return (await store.connection.exists(store.keys.runner(job.runner_id))) === 1;
}

/**
 * Marks an active job `crashed` (atomically with its terminal status record and event). When the
 * job ran on this host and its process group outlived its runner, the orphaned group is killed
 * first: nobody reads its output or can cancel it any more.
 */
export async function crashJob(
  store: JobStore,
  job: JobMeta,
  reason: string,
  localHost: string,
): Promise<boolean> {
  let why = reason;
  if (job.host === localHost && job.pgid && groupAlive(job.pgid, job.proc_start)) {
    try {
      killGroup(job.pgid, 'SIGKILL');
      why = `${reason}; its orphaned process group ${job.pgid} was killed`;
    } catch (err) {
      why = `${reason}; its orphaned process group ${job.pgid} could not be killed: ${(err as Error).message}`;
    }
  }
  const now = new Date().toISOString();
  const res = await store.transition(job.id, {
    from: ['queued', 'running', 'cancelling'],
    to: 'crashed',
    fields: { reason: why, finished_at: now },
    record: { ts: now, kind: 'status', status: 'crashed', reason: why },
    event: job,
    // Only this host can see (and kill) the job's process group: a job of another host stays in
    // that host's process set, so its own reconcile reaps a group that outlived the runner.
    procs: job.host === localHost ? { host: localHost, op: 'rem' } : undefined,
  });
  return res.ok;
}
