import { basename, resolve } from 'node:path';
import {
  InvalidError,
  JOB_STATUSES,
  JobLogRecord,
  JobStatus,
  KillFailedError,
  newUlid,
  NotFoundError,
} from '@coordbus/envelope';
import {
  cancelJobs,
  isJobStatus,
  JobFilter,
  JobMeta,
  type JobStore,
  type LogQuery,
  matchesFilter,
  newJob,
  prune,
  publicRow,
  readOrFollow,
} from '@coordbus/jobs';
import { parseDuration } from '@coordbus/config';
import { JobsContext, withContext } from './context';
import { jobsTable, renderRecord } from './format';
import { hostname } from 'node:os';

/** Thrown for bad flags; main turns it into exit code 2. */
export class UsageError extends Error {}

export function durationFlag(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const ms = parseDuration(raw);
  if (ms === undefined)
    throw new UsageError(`${flag} must be a duration like 30s, 10m, 2h, 7d (got ${JSON.stringify(raw)})`);
  return ms;
}

export function intFlag(flag: string, raw: string | undefined, min: number): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < min)
    throw new UsageError(`${flag} must be an integer >= ${min} (got ${JSON.stringify(raw)})`);
  return Number(raw);
}

/** `--env K=V` (or `--env K` to pass this shell's value through). */
export function parseEnvFlags(
  values: string[],
  from: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    const name = eq < 0 ? v : v.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      throw new UsageError(`--env ${JSON.stringify(v)}: not NAME=value or NAME`);
    if (eq < 0) {
      const value = from[name];
      if (value === undefined) throw new UsageError(`--env ${name}: not set in this environment`);
      env[name] = value;
    } else env[name] = v.slice(eq + 1);
  }
  return env;
}

/** A job id, or a unique prefix of one. */
export async function resolveJob(store: JobStore, ref: string): Promise<JobMeta> {
  const exact = await store.get(ref);
  if (exact) return exact;
  const upper = ref.toUpperCase();
  const ids = (await store.allIds()).filter((id) => id.startsWith(upper));
  if (ids.length === 1) {
    const job = await store.get(ids[0]);
    if (job) return job;
  }
  if (ids.length > 1) throw new InvalidError(`job prefix ${ref} is ambiguous (${ids.length} jobs)`);
  throw new NotFoundError(`no job ${ref}`, { job: ref });
}

export interface RunFlags {
  hook: string;
  worktree?: string;
  tag: string[];
  name?: string;
  cwd?: string;
  env: string[];
  timeout?: string;
  sampleEvery?: string;
  keepLast?: string;
  retention?: string;
  foreground?: boolean;
  shell?: boolean;
  json?: boolean;
}

/** `coordbus jobs run`: returns the process exit code. */
export async function runCommand(argv: string[], flags: RunFlags): Promise<number> {
  if (!argv.length) throw new UsageError('jobs run needs a command after --');
  if (flags.shell && argv.length !== 1)
    throw new UsageError('--shell takes the command as one string: -- "cmd | other"');
  const env = parseEnvFlags(flags.env);
  const invocationId = newUlid();
  const { meta, secrets } = newJob(
    {
      name: flags.name ?? basename(flags.shell ? 'sh' : argv[0]),
      hook: flags.hook,
      worktree: flags.worktree ?? null,
      tags: flags.tag,
      argv,
      shell: !!flags.shell,
      cwd: resolve(flags.cwd ?? process.cwd()),
      env,
      timeout_ms: durationFlag('--timeout', flags.timeout) ?? null,
      sample_every: intFlag('--sample-every', flags.sampleEvery, 1) ?? 1,
      keep_last: intFlag('--keep-last', flags.keepLast, 0) ?? null,
      retention_ms: durationFlag('--retention', flags.retention) ?? null,
      background: !flags.foreground,
    },
    invocationId,
  );
  return withContext(async (ctx) => {
    if (!flags.foreground) {
      const submitted = await ctx.submitter().submitBackground(meta, secrets);
      if (submitted.status === 'failed') {
        // No job-coordinator can see its cwd: recorded failed (jobs ls shows why), never queued.
        print(flags.json, publicRow(submitted), `job ${meta.id} failed: ${submitted.reason}\n`, 'stderr');
        return 1;
      }
      print(
        flags.json,
        { ...publicRow(meta) },
        `job ${meta.id} queued: ${meta.name} (invocation ${invocationId})\n`,
      );
      return 0;
    }
    await ctx.submitter().recordForeground(meta);
    process.stderr.write(`job ${meta.id} running: ${meta.name} (invocation ${invocationId})\n`);
    const final = await ctx.runForeground(meta, secrets);
    if (!final) return 1;
    print(
      flags.json,
      publicRow(final),
      `job ${final.id} ${final.status}${final.reason ? `: ${final.reason}` : ''}\n`,
      'stderr',
    );
    return exitCodeOf(final);
  });
}

/** A foreground job's exit code, shell-style: its own code, 128+n for a signal, 1 otherwise. */
export function exitCodeOf(job: JobMeta): number {
  if (job.status === 'succeeded') return 0;
  if (job.exit_code !== null && job.exit_code > 0) return job.exit_code;
  if (job.signal) {
    const n = require('node:os').constants.signals[job.signal] as number | undefined;
    if (n) return 128 + n;
  }
  return 1;
}

function print(
  json: boolean | undefined,
  data: unknown,
  text: string,
  stream: 'stdout' | 'stderr' = 'stdout',
): void {
  if (json) process.stdout.write(`${JSON.stringify(data)}\n`);
  else process[stream].write(text);
}

export interface LsFlags {
  status?: string;
  hook?: string;
  worktree?: string;
  tag?: string;
  inv?: string;
  limit?: string;
  json?: boolean;
}

export async function lsCommand(flags: LsFlags): Promise<number> {
  if (flags.status !== undefined && !isJobStatus(flags.status))
    throw new UsageError(
      `--status must be one of ${JOB_STATUSES.join(', ')} (got ${JSON.stringify(flags.status)})`,
    );
  const limit = intFlag('--limit', flags.limit, 1);
  const filter: JobFilter = {
    hook: flags.hook,
    worktree: flags.worktree,
    tag: flags.tag,
    inv: flags.inv,
    status: flags.status as JobStatus | undefined,
  };
  return withContext(async (ctx) => {
    const now = Date.now();
    let jobs = (await ctx.store.list(filter.status ? [filter.status] : undefined)).filter((j) =>
      matchesFilter(j, filter, now),
    );
    if (limit !== undefined) jobs = jobs.slice(-limit);
    if (flags.json) process.stdout.write(`${JSON.stringify(jobs.map(publicRow))}\n`);
    else process.stdout.write(jobs.length ? jobsTable(jobs, now) : 'no jobs\n');
    return 0;
  });
}

export interface LogsFlags {
  stdout?: boolean;
  stderr?: boolean;
  status?: boolean;
  seq?: string;
  sinceSeq?: string;
  since?: string;
  follow?: boolean;
  json?: boolean;
}

export async function logsCommand(ref: string, flags: LogsFlags): Promise<number> {
  const kinds = new Set<JobLogRecord['kind']>();
  if (flags.stdout) kinds.add('stdout');
  if (flags.stderr) kinds.add('stderr');
  if (flags.status) kinds.add('status');
  const sinceMs = durationFlag('--since', flags.since);
  const q: LogQuery = {
    seq: intFlag('--seq', flags.seq, 1),
    sinceSeq: intFlag('--since-seq', flags.sinceSeq, 0),
    sinceMs: sinceMs === undefined ? undefined : Date.now() - sinceMs,
    kinds: kinds.size ? kinds : undefined,
  };
  return withContext(async (ctx) => {
    const job = await resolveJob(ctx.store, ref);
    let lastSeq: number | undefined;
    const onRecord = (rec: JobLogRecord) => {
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(rec)}\n`);
        return;
      }
      // Sampling gaps are visible: say how many records were dropped between two shown ones.
      if (!q.kinds && q.seq === undefined && lastSeq !== undefined && rec.seq > lastSeq + 1) {
        process.stderr.write(`[... ${rec.seq - lastSeq - 1} record(s) sampled out]\n`);
      }
      lastSeq = rec.seq;
      const out = renderRecord(rec);
      process[out.stream].write(out.text);
    };
    const blocking = flags.follow ? ctx.duplicate('follow') : ctx.redis;
    const res = await readOrFollow(ctx.store, blocking, job.id, q, onRecord, {
      follow: !!flags.follow,
      localHost: hostname(),
    });
    if (res.message) process.stderr.write(`coordbus: ${res.message}\n`);
    // Without --follow this is a read of the log: it succeeds whatever the job did (collecting a
    // failed job's output must not fail a script). --follow waits for the outcome and reports it.
    if (!flags.follow) return 0;
    const final = res.terminal ?? (await ctx.store.get(job.id));
    const code = followExitCode(final?.status);
    if (code && !res.message) {
      const why = final?.reason ?? (final?.exit_code ? `exit code ${final.exit_code}` : final?.signal);
      process.stderr.write(`coordbus: job ${job.id} ${final?.status}${why ? `: ${why}` : ''}\n`);
    }
    return code;
  });
}

/**
 * The exit code of `jobs logs --follow` once the job has ended (README, `jobs logs --help`):
 * 0 when it succeeded or was skipped by its conditions; 1 when it did not succeed (failed,
 * signaled, timed-out, cancelled, crashed). Not the job's own exit code, unlike `jobs run
 * --foreground`: the codes 2-10 keep their table meaning (usage, not found, Redis unavailable...),
 * so a script can tell "the job failed" from "coordbus could not tell".
 */
export function followExitCode(status: JobStatus | undefined): number {
  return status === 'succeeded' || status === 'skipped' ? 0 : 1;
}

export interface CancelFlags {
  hook?: string;
  worktree?: string;
  tag?: string;
  inv?: string;
  olderThan?: string;
  all?: boolean;
  wait?: boolean;
  json?: boolean;
}

export async function cancelCommand(ref: string | undefined, flags: CancelFlags): Promise<number> {
  const filter: JobFilter = {
    hook: flags.hook,
    worktree: flags.worktree,
    tag: flags.tag,
    inv: flags.inv,
    olderThanMs: durationFlag('--older-than', flags.olderThan),
  };
  const hasFilter = Object.values(filter).some((v) => v !== undefined);
  if (!ref && !hasFilter && !flags.all) {
    throw new UsageError(
      'jobs cancel needs a job id, a filter (--hook, --worktree, --tag, --inv, --older-than) or --all',
    );
  }
  if (ref && (hasFilter || flags.all))
    throw new UsageError('jobs cancel takes a job id or filters/--all, not both');
  if (flags.all && hasFilter)
    throw new UsageError('--all cancels every active job; leave out the filters (or drop --all)');
  return withContext(async (ctx) => {
    const jobId = ref ? (await resolveJob(ctx.store, ref)).id : undefined;
    const res = await cancelJobs(ctx.store, ctx.queue, {
      jobId,
      filter,
      all: flags.all,
      wait: flags.wait !== false,
    });
    const names = res.cancelled.map((j) => `${j.name} (${j.id})`);
    if (flags.json) {
      process.stdout.write(
        `${JSON.stringify({ count: res.cancelled.length, cancelled: res.cancelled.map(publicRow), pending: res.pending.map(publicRow), finished: res.finished.map(publicRow) })}\n`,
      );
    } else {
      process.stdout.write(
        `cancelled ${res.cancelled.length} job(s)${names.length ? `: ${names.join(', ')}` : ''}\n`,
      );
      for (const j of res.finished)
        process.stdout.write(`  ${j.name} (${j.id}) ended on its own: ${j.status}\n`);
    }
    if (res.pending.length && flags.wait !== false) {
      throw new KillFailedError(
        `still running after the kill grace: ${res.pending.map((j) => `${j.name} (${j.id})`).join(', ')}`,
        {
          pending: res.pending.map((j) => j.id),
        },
      );
    }
    if (res.pending.length)
      process.stdout.write(`asked to stop: ${res.pending.map((j) => `${j.name} (${j.id})`).join(', ')}\n`);
    return 0;
  });
}

export interface PruneFlags {
  dryRun?: boolean;
  retention?: string;
  keepLast?: string;
  json?: boolean;
}

export async function pruneCommand(flags: PruneFlags): Promise<number> {
  const override = {
    retentionMs: durationFlag('--retention', flags.retention),
    keepLast: intFlag('--keep-last', flags.keepLast, 0),
  };
  return withContext(async (ctx: JobsContext) => {
    const s = ctx.settings;
    const res = await prune(
      ctx.store,
      { keepLast: s.keepLast, retentionMs: s.retentionMs, staleRunningAfterMs: s.staleRunningAfterMs },
      { dryRun: !!flags.dryRun, override, localHost: hostname() },
    );
    const verb = flags.dryRun ? 'would remove' : 'removed';
    const crashVerb = flags.dryRun ? 'would mark crashed' : 'marked crashed';
    if (flags.json) {
      process.stdout.write(
        `${JSON.stringify({ dry_run: !!flags.dryRun, evict: res.decision.evict, mark_crashed: res.decision.markCrashed, evicted: res.evicted, crashed: res.crashed, kept: res.decision.kept })}\n`,
      );
    } else {
      const n = flags.dryRun ? res.decision.evict.length : res.evicted.length;
      const c = flags.dryRun ? res.decision.markCrashed.length : res.crashed.length;
      process.stdout.write(`${verb} ${n} job(s), ${crashVerb} ${c}, kept ${res.decision.kept}\n`);
      for (const e of res.decision.evict) process.stdout.write(`  ${e.id}: ${e.reason}\n`);
      for (const e of res.decision.markCrashed) process.stdout.write(`  ${e.id}: ${e.reason}\n`);
    }
    return 0;
  });
}
