import { existsSync } from 'node:fs';
import type Redis from 'ioredis';
import { KillFailedError } from '@coordbus/envelope';
import { JOBS_VARS } from '@coordbus/config';
import { jobBaseEnv, SCRUBBED, scrubArgv, secretRedactor, unpackSecrets } from '../domain/env-scrub';
import type { JobEventIdentity, JobMeta } from '../domain/job';
import { outcomeOf, ProcessEnd } from '../domain/outcome';
import { JobLogWriter } from '../store/job-log';
import type { JobStore, TransitionResult } from '../store/job-store';
import { waitOutOutage } from '../store/outage';
import type { CancelBus } from './control';
import { RunningProcess } from './process-runner';
import type { RunnerIdentity } from './runner';
import type { JobCgroups } from './cgroup';
import type { Spawner } from './spawner';
import { servesPath } from './workspace';

export interface ExecutorOptions {
  killGraceMs: number;
  logMaxLen: number;
  /** Longest stored line in bytes; the rest is dropped with a marker (default JOBS_VARS.JOBS_LOG_LINE_MAX_BYTES.default). */
  logLineMaxBytes?: number;
  /** Stored output per job in bytes; past it output is counted, not stored (default JOBS_VARS.JOBS_LOG_MAX_BYTES.default). */
  logMaxBytes?: number;
  /** Where a job's PATH and HOME come from (the runner's environment, by default): nothing else of it is passed on. */
  baseEnv?: NodeJS.ProcessEnv;
  /** Directories this runner can run jobs in (JOBS_WORKSPACE_ROOTS); default everything. */
  workspaceRoots?: readonly string[];
  /** Where job processes are forked (default: this process; a replica uses its HelperSpawner). */
  spawner?: Spawner;
  /** Each job in a cgroup of its own (JobCgroups.open); without, process groups and the sweep. */
  cgroups?: JobCgroups;
  onWarn?: (msg: string, extra?: Record<string, unknown>) => void;
}

export interface ExecuteOptions {
  /** Secrets handed over in memory (foreground); background jobs fetch theirs once from Redis. */
  secrets?: Record<string, string>;
  /** Also copy the job's output here (foreground runs show it live). */
  tee?: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };
  /** Called once the process started (pid known). */
  onStarted?: (meta: JobMeta) => void;
  /** The job's event identity when the caller has it (its BullMQ job): read and claim in one trip. */
  identity?: JobEventIdentity;
}

/**
 * Runs one job end to end: claims it (queued -> running, so a cancelled or crashed job is never
 * started), spawns it in its own process group, streams its output into the log, reacts to
 * cancel and timeout, and records exactly one terminal status. Used by the coordinator's BullMQ
 * worker and by the CLI for foreground jobs, so both leave the same records.
 */
export class JobExecutor {
  constructor(
    private readonly redis: Redis,
    private readonly store: JobStore,
    private readonly runner: RunnerIdentity,
    private readonly bus: CancelBus,
    private readonly options: ExecutorOptions,
  ) {}

  async execute(id: string, opts: ExecuteOptions = {}): Promise<JobMeta | null> {
    const { store } = this;
    // A Redis outage (full, restarting) met on the way is waited out: the job is not at fault, and
    // a claim or terminal record given up on would leave it queued or running for ever.
    const outage = {
      onRetry: (err: Error) =>
        this.options.onWarn?.('job waits out a Redis outage', { job: id, err: err.message }),
    };
    const claimFields = (): Partial<JobMeta> => ({
      started_at: new Date().toISOString(),
      host: this.runner.host,
      runner_id: this.runner.id,
      runner_pid: this.runner.pid,
      runner_start: this.runner.start,
      kill_grace_ms: this.options.killGraceMs,
    });
    // Secrets live in Redis only until the job starts: taken and deleted as the job is read.
    let meta: JobMeta;
    let taken: Record<string, string>;
    let claim: TransitionResult;
    if (opts.identity) {
      // One round trip: the event comes from what the caller holds, not from the metadata.
      const fields = claimFields();
      const held: { secrets?: Record<string, string> } = {};
      const identity = opts.identity;
      const claimed = await waitOutOutage(() => store.claim(id, fields, identity, held), outage);
      if (!claimed.meta) return claimed.claim.missing ? null : waitOutOutage(() => store.get(id), outage);
      ({ meta, secrets: taken, claim } = claimed);
    } else {
      const read = await store.takeForStart(id);
      if (!read.meta) return null;
      ({ meta, secrets: taken } = read);
      const fields = claimFields();
      claim = await waitOutOutage(
        () => store.transition(id, { from: ['queued'], to: 'running', fields, event: meta }),
        outage,
      );
      if (!claim.ok) return waitOutOutage(() => store.get(id), outage);
      Object.assign(meta, fields, { status: 'running' });
    }
    const { env: secrets, argv: realArgv, stdin: realStdin } = unpackSecrets(opts.secrets ?? taken);
    const missing = meta.secret_names.filter((n) => !(n in secrets));
    if (!realArgv && meta.argv.some((a) => a.includes(SCRUBBED))) missing.push('its command line');
    if (realStdin === null && meta.stdin?.includes(SCRUBBED)) missing.push('its stdin');
    if (missing.length) {
      // Its secrets waited past JOBS_SECRET_TTL: running without them would fail in stranger ways.
      const reason = `its secrets expired before it started (${missing.join(', ')}); submit it again`;
      const now = new Date().toISOString();
      await waitOutOutage(
        () =>
          store.transition(id, {
            from: ['running', 'cancelling'],
            to: 'failed',
            fields: { reason, finished_at: now },
            record: { ts: now, kind: 'status', status: 'failed', reason },
            minSeq: claim.nextSeq,
            event: meta,
          }),
        outage,
      );
      return { ...meta, status: 'failed', reason, finished_at: now };
    }

    const writer = new JobLogWriter(this.redis, store.keys.log(id), store.codec, claim.nextSeq, {
      sampleEvery: meta.sample_every,
      maxLen: this.options.logMaxLen,
      maxBytes: this.options.logMaxBytes ?? JOBS_VARS.JOBS_LOG_MAX_BYTES.default,
      // Its secrets, and any secret given on its command line or stdin, never reach the stored log either.
      redact: secretRedactor({
        ...secrets,
        ...Object.fromEntries(
          [
            ...scrubArgv(realArgv ?? []).found,
            ...(realStdin === null ? [] : scrubArgv([realStdin]).found),
          ].map((v, i) => [`argv${i}`, v]),
        ),
      }),
      onError: (err) => this.options.onWarn?.('job log write failed', { job: id, err: err.message }),
    });

    let proc: RunningProcess | undefined;
    let cancelRequested = false;
    const requestCancel = () => {
      if (cancelRequested) return;
      cancelRequested = true;
      writer.status({ status: 'cancelling', reason: 'cancel requested' });
      if (proc) this.cancelProcess(proc, meta);
    };
    this.bus.register(id, requestCancel);

    let end: ProcessEnd;
    const cwd = meta.cwd ?? process.cwd();
    const roots = this.options.workspaceRoots;
    const unserved = !!roots && !servesPath(roots, cwd);
    const cwdMissing = unserved || !existsSync(cwd);
    if (cwdMissing) {
      end = { exitCode: null, signal: null, cancelled: false, timedOut: false, spawnError: 'ENOENT' };
    } else {
      proc = new RunningProcess({
        argv: realArgv ?? meta.argv,
        stdin: realStdin ?? meta.stdin ?? null,
        shell: meta.shell,
        cwd,
        env: {
          ...jobBaseEnv(this.options.baseEnv ?? process.env),
          ...meta.env,
          ...secrets,
          COORDBUS_JOB_ID: meta.id,
          COORDBUS_INVOCATION_ID: meta.invocation_id,
          COORDBUS_HOOK: meta.hook,
          COORDBUS_JOB_NAME: meta.name,
        },
        timeoutMs: meta.timeout_ms,
        killGraceMs: this.options.killGraceMs,
        lineMaxBytes: this.options.logLineMaxBytes ?? JOBS_VARS.JOBS_LOG_LINE_MAX_BYTES.default,
        marker: `COORDBUS_JOB_ID=${meta.id}`,
        spawner: this.options.spawner,
        cgroups: this.options.cgroups,
        onLine: (kind, line) => {
          writer.line(kind, line);
          opts.tee?.[kind].write(`${line}\n`);
        },
        onStart: async ({ pid, startTime }) => {
          meta.pgid = pid;
          meta.proc_start = startTime;
          // One script records the process group and writes the `running` record. Its seq is
          // reserved now, before any output exists; the script is sent on the writer's connection
          // ahead of the writer's first flush, so Redis applies them in seq order.
          const seq = writer.reserve();
          // Retried across an outage: the process set is what lets a reconcile reap the group.
          const running = waitOutOutage(
            () =>
              store.transition(id, {
                from: ['running', 'cancelling'],
                fields: { pgid: pid, proc_start: startTime },
                record: {
                  ts: new Date().toISOString(),
                  kind: 'status',
                  status: 'running',
                  reason: `pid ${pid} on ${this.runner.host}`,
                },
                minSeq: seq,
                procs: { host: this.runner.host, op: 'add' },
              }),
            outage,
          );
          opts.onStarted?.(meta);
          try {
            await running;
          } catch (err) {
            this.options.onWarn?.('could not record the process group', { job: id, err: String(err) });
          }
        },
      });
      if (cancelRequested) this.cancelProcess(proc, meta);
      end = await proc.done;
    }
    const outcome = outcomeOf(end);
    if (unserved)
      outcome.reason = `could not start: ${cwd} is outside the workspace this job-coordinator serves (${roots!.join(', ')})`;
    else if (cwdMissing) outcome.reason = `could not start: working directory ${cwd} does not exist`;
    if (writer.overCap.lines) {
      const capped = `output over the log cap: ${writer.overCap.lines} lines (${writer.overCap.bytes} bytes) counted, not stored`;
      outcome.reason = outcome.reason ? `${outcome.reason}; ${capped}` : capped;
    }
    const finishedAt = new Date().toISOString();
    await writer.flush();
    const fields: Partial<JobMeta> = {
      exit_code: outcome.exit_code,
      signal: outcome.signal,
      reason: outcome.reason ?? null,
      finished_at: finishedAt,
    };
    const record = {
      ts: finishedAt,
      kind: 'status' as const,
      status: outcome.status,
      exit_code: outcome.exit_code,
      signal: outcome.signal,
      ...(outcome.reason ? { reason: outcome.reason } : {}),
    };
    try {
      const res = await waitOutOutage(
        () =>
          store.transition(id, {
            from: ['running', 'cancelling'],
            to: outcome.status,
            fields,
            record,
            minSeq: writer.nextSeq,
            event: meta,
            procs: { host: this.runner.host, op: 'rem' },
          }),
        outage,
      );
      if (!res.ok) {
        this.options.onWarn?.('job was already finished by someone else', { job: id, status: res.status });
        return await waitOutOutage(() => store.get(id), outage);
      }
    } finally {
      this.bus.unregister(id);
    }
    return { ...meta, ...fields, status: outcome.status };
  }

  private cancelProcess(proc: RunningProcess, meta: JobMeta): void {
    try {
      proc.cancel();
    } catch (err) {
      const reason = err instanceof KillFailedError ? err.message : String(err);
      this.options.onWarn?.('cancel: kill failed', { job: meta.id, reason });
      void this.store
        .transition(meta.id, {
          from: ['cancelling', 'running'],
          fields: { reason: `kill failed: ${reason}` },
        })
        .catch(() => undefined);
    }
  }
}
