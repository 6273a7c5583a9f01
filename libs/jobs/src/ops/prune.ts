import { ACTIVE_JOB_STATUSES } from '../domain/job';
import {
  retention,
  RetentionDecision,
  RetentionJob,
  RetentionOverride,
  RetentionPolicy,
} from '../domain/retention';
import type { JobStore } from '../store/job-store';
import { crashJob, runnerAlive } from './liveness';

export interface PruneResult {
  decision: RetentionDecision;
  evicted: string[];
  crashed: string[];
}

/**
 * Applies retention: gathers a snapshot, asks the pure `retention` function what to do, then
 * marks stale running jobs crashed and deletes evicted jobs (metadata and log stream together).
 */
export async function prune(
  store: JobStore,
  policy: RetentionPolicy,
  opts: { dryRun?: boolean; override?: RetentionOverride; localHost: string; nowMs?: number },
): Promise<PruneResult> {
  const jobs = await store.list();
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const snapshot: RetentionJob[] = [];
  for (const j of jobs) {
    const active = ACTIVE_JOB_STATUSES.includes(j.status);
    snapshot.push({
      id: j.id,
      worktree: j.worktree,
      status: j.status,
      created_at_ms: Date.parse(j.created_at),
      started_at_ms: j.started_at ? Date.parse(j.started_at) : null,
      finished_at_ms: j.finished_at ? Date.parse(j.finished_at) : null,
      keep_last: j.keep_last,
      retention_ms: j.retention_ms,
      runner_alive: active && j.status !== 'queued' ? await runnerAlive(store, j, opts.localHost) : true,
    });
  }
  const decision = retention({
    jobs: snapshot,
    policy,
    override: opts.override,
    nowMs: opts.nowMs ?? Date.now(),
  });
  const evicted: string[] = [];
  const crashed: string[] = [];
  if (!opts.dryRun) {
    for (const { id, reason } of decision.markCrashed) {
      const job = byId.get(id);
      if (job && (await crashJob(store, job, reason, opts.localHost))) crashed.push(id);
    }
    for (const { id } of decision.evict) {
      if ((await store.delete(id)) === 'deleted') evicted.push(id);
    }
  }
  return { decision, evicted, crashed };
}
