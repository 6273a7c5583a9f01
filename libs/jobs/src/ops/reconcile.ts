import { ACTIVE_JOB_STATUSES } from '../domain/job';
import { groupAlive, killGroup, processAlive } from '../exec/proc';
import type { JobStore } from '../store/job-store';
import { crashJob } from './liveness';

export interface ReconcileResult {
  /** Jobs marked crashed because their runner on this host is gone. */
  crashed: string[];
  /** Orphaned process groups killed (their job was already terminal). */
  reaped: string[];
}

/**
 * The boot (and periodic) reconcile pass of one host: every active job that a now-dead runner on
 * this host was running becomes `crashed` (never re-run), and process groups this host started
 * for jobs whose runner died are killed. Runners are probed by pid + start time, groups by
 * `kill(-pgid, 0)` + the leader's start time, so a reused pid is never mistaken for ours.
 */
export async function reconcileHost(
  store: JobStore,
  self: { host: string; id: string },
): Promise<ReconcileResult> {
  const crashed: string[] = [];
  const reaped: string[] = [];
  const active = await store.list(ACTIVE_JOB_STATUSES.filter((s) => s !== 'queued'));
  for (const job of active) {
    if (job.host !== self.host || job.runner_id === self.id) continue;
    if (job.runner_pid && processAlive(job.runner_pid, job.runner_start)) continue;
    const reason = `its runner (pid ${job.runner_pid ?? '?'} on ${job.host}) died while it ran`;
    if (await crashJob(store, job, reason, self.host)) crashed.push(job.id);
  }
  for (const id of await store.procsOf(self.host)) {
    const job = await store.get(id);
    if (!job) {
      await store.forgetProc(self.host, id);
      continue;
    }
    if (job.runner_id === self.id) continue;
    if (job.runner_pid && processAlive(job.runner_pid, job.runner_start)) continue;
    if (job.pgid && groupAlive(job.pgid, job.proc_start)) {
      try {
        killGroup(job.pgid, 'SIGKILL');
        reaped.push(id);
      } catch {
        continue; // not ours to kill (EPERM): leave it listed for an operator
      }
    }
    await store.forgetProc(self.host, id);
  }
  return { crashed, reaped };
}
