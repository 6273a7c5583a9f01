import type Redis from 'ioredis';
import {
  EnvelopeCodec,
  InvalidError,
  JOB_STATUSES,
  JobEvent,
  JobLogRecord,
  JobStatus,
  Keyspace,
  Schemas,
  SchemaMismatchError,
  TERMINAL_JOB_STATUSES,
} from '@coordbus/envelope';
import { isJobStatus, JobEventIdentity, JobEventIdentityField, JobMeta } from '../domain/job';
import { bindCommand, BoundCommand } from '@coordbus/lua';
import { COMMANDS } from '../commands';

/** Key names of one job (all under the `{jobs}` tag). */
export class JobKeys {
  constructor(readonly ks: Keyspace) {}
  job(id: string): string {
    return this.ks.jobKey(`job:${id}`);
  }
  log(id: string): string {
    return this.ks.jobLog(id);
  }
  secrets(id: string): string {
    return this.ks.jobKey(`secrets:${id}`);
  }
  get all(): string {
    return this.ks.jobKey('all');
  }
  status(s: JobStatus): string {
    return this.ks.jobKey(`status:${s}`);
  }
  /** Jobs whose process group this host started and may still be alive (reconcile probes these). */
  procs(host: string): string {
    return this.ks.jobKey(`procs:${host}`);
  }
  /** Liveness of a runner (replica or CLI), refreshed with a TTL. */
  runner(runnerId: string): string {
    return this.ks.jobKey(`runner:${runnerId}`);
  }
  /** Workspace roots each live replica serves (field = runner id; see exec/workspace). */
  get workspaces(): string {
    return this.ks.jobKey('workspaces');
  }
  get pruneLock(): string {
    return this.ks.jobKey('prune-lock');
  }
}

export interface TransitionOptions {
  /** Statuses the job must be in; `'create'` = it must not exist yet. */
  from: readonly JobStatus[] | 'create';
  /** The new status; omit to only set fields. */
  to?: JobStatus;
  fields?: Partial<JobMeta>;
  /** The status record to append (seq is allocated by the script); omit for none. */
  record?: Omit<JobLogRecord, 'seq'>;
  /** Lowest seq the record may take: the job's writer's next seq. */
  minSeq?: number;
  /** Emit a lifecycle event built from this metadata (after the change). */
  event?: JobEventSource;
  procs?: { host: string; op: 'add' | 'rem' };
}

export interface TransitionResult {
  ok: boolean;
  /** No such job. */
  missing: boolean;
  /** Next free seq of the job's log. */
  nextSeq: number;
  /** Status before (ok) or current status (refused). */
  status: JobStatus | null;
}

/** What a job's lifecycle event is built from: its metadata, or the part of it a BullMQ job carries. */
export type JobEventSource = Pick<JobMeta, 'id' | 'status' | JobEventIdentityField> &
  Partial<Pick<JobMeta, 'exit_code' | 'signal' | 'host' | 'reason'>>;

/** A claimed job: its metadata (after the claim), its taken secrets and the claim's result. */
export interface ClaimResult {
  meta: JobMeta | null;
  secrets: Record<string, string>;
  claim: TransitionResult;
}

/** Version of the job metadata hash layout (field `meta_v`). */
export const META_VERSION = 1;

const JSON_FIELDS = new Set(['tags', 'argv', 'env', 'secret_names']);
const BOOL_FIELDS = new Set(['shell', 'background']);

export interface JobStoreOptions {
  logMaxLen?: number;
  eventsMaxLen?: number;
}

/**
 * The job metadata store: a hash per job plus indexes (all jobs by creation time, a set per
 * status, a per-host set of live process groups). Every status change goes through one Lua
 * script together with its status log record and lifecycle event.
 */
export class JobStore {
  readonly keys: JobKeys;
  private readonly redis: Redis;
  /** commands/jobTransition-6+.lua and commands/jobDelete-14.lua */
  private readonly jobTransition: BoundCommand<[number, number, string]>;
  private readonly jobDelete: BoundCommand<number>;
  private readonly logMaxLen: number;
  private readonly eventsMaxLen: number;

  constructor(
    redis: Redis,
    readonly keyspace: Keyspace,
    readonly codec: EnvelopeCodec = new EnvelopeCodec(),
    options: JobStoreOptions = {},
  ) {
    this.keys = new JobKeys(keyspace);
    this.logMaxLen = options.logMaxLen ?? 100_000;
    this.eventsMaxLen = options.eventsMaxLen ?? 100_000;
    this.redis = redis;
    this.jobTransition = bindCommand(redis, COMMANDS.jobTransition);
    this.jobDelete = bindCommand(redis, COMMANDS.jobDelete);
  }

  get connection(): Redis {
    return this.redis;
  }

  async transition(id: string, opts: TransitionOptions): Promise<TransitionResult> {
    return transitionResult(await this.jobTransition(...this.transitionCall(id, opts)));
  }

  /**
   * Takes a queued job for a runner in one round trip: its waiting secrets (deleted as they are
   * read), its metadata, and `queued → running` with `fields` and the `running` event — built
   * from `identity`, what the BullMQ job carries, since the metadata is read in the same trip.
   * A job that is not queued any more is refused as by transition() (its secrets are gone all the
   * same: nothing will run it).
   *
   * Safe to call again after it threw (an outage): secrets taken by an earlier attempt are kept in
   * `held` (the caller passes the same object), and a claim that was applied although its reply
   * was lost (a restart) is recognised by its own `runner_id` and `started_at`, not refused.
   */
  async claim(
    id: string,
    fields: Partial<JobMeta>,
    identity: JobEventIdentity,
    held: { secrets?: Record<string, string> } = {},
  ): Promise<ClaimResult> {
    const [keys, args] = this.transitionCall(id, {
      from: ['queued'],
      to: 'running',
      fields,
      event: { ...identity, id, status: 'queued' },
    });
    const pipe = this.redis.pipeline().getdel(this.keys.secrets(id)).hgetall(this.keys.job(id));
    // bindCommand defined the script on this client, so its pipelines have it too (variadic: the
    // key count comes first).
    (pipe as unknown as Record<string, (...a: (string | number)[]) => unknown>)[COMMANDS.jobTransition.name](
      keys.length,
      ...keys,
      ...args,
    );
    const res = (await pipe.exec()) ?? [];
    // GETDEL is not refused at maxmemory while the script is: what it took must outlive this attempt.
    const raw = res[0] && !res[0][0] ? (res[0][1] as string | null) : null;
    if (raw) held.secrets = JSON.parse(raw) as Record<string, string>;
    for (const [err] of res) if (err) throw err;
    const h = res[1]?.[1] as Record<string, string>;
    const claim = transitionResult(res[2]?.[1] as [number, number, string]);
    const ours =
      !claim.ok &&
      claim.status === 'running' &&
      !!fields.runner_id &&
      h.runner_id === fields.runner_id &&
      h.started_at === fields.started_at;
    if (ours) claim.ok = true;
    const meta = claim.ok ? Object.assign(decodeMeta(h), fields, { status: 'running' as const }) : null;
    return { meta, secrets: held.secrets ?? {}, claim };
  }

  /** The keys and arguments of commands/jobTransition-6+.lua for one change. */
  private transitionCall(id: string, opts: TransitionOptions): [(string | number)[], (string | number)[]] {
    const k = this.keys;
    const fields: Record<string, string | null> = {};
    for (const [key, value] of Object.entries(opts.fields ?? {})) fields[key] = encodeField(key, value);
    // Records and events are built here from metadata that was validated when the job was
    // created; a full schema pass on every status change costs more CPU than the rest of a no-op
    // job, so it runs on create only. The size limit is always enforced.
    const validate = opts.from === 'create';
    let record = '';
    if (opts.record) {
      // Placeholder seq: the script assigns the real one.
      this.codec.encode(Schemas.jobLog, { ...opts.record, seq: 1 }, { validate });
      record = JSON.stringify(opts.record);
    }
    let event = '';
    if (opts.event) {
      const e = opts.event;
      const data: JobEvent = {
        job_id: e.id,
        invocation_id: e.invocation_id,
        hook: e.hook,
        name: e.name,
        worktree: e.worktree,
        tags: e.tags,
        status: opts.to ?? e.status,
        exit_code: opts.fields?.exit_code ?? e.exit_code ?? null,
        signal: opts.fields?.signal ?? e.signal ?? null,
        host: opts.fields?.host ?? e.host ?? '',
        ts: new Date().toISOString(),
      };
      const reason = opts.fields?.reason ?? e.reason;
      if (reason) data.reason = reason;
      this.codec.encode(Schemas.jobEvent, data, { validate });
      event = JSON.stringify(data);
    }
    const from = opts.from === 'create' ? '-' : opts.from.join(',');
    const created =
      opts.from === 'create' ? Date.parse(opts.fields?.created_at ?? new Date().toISOString()) : 0;
    // Only the sets the change can touch: the new status's, and the one of each allowed current status.
    const fromSets = opts.to && opts.from !== 'create' ? opts.from.map((s) => k.status(s)) : [];
    return [
      [
        k.job(id),
        k.log(id),
        this.keyspace.jobEvents,
        k.all,
        opts.procs ? k.procs(opts.procs.host) : k.all,
        opts.to ? k.status(opts.to) : k.all,
        ...fromSets,
      ],
      [
        id,
        from,
        opts.to ?? '',
        JSON.stringify(fields),
        record,
        opts.minSeq ?? 0,
        event,
        created,
        opts.procs?.op ?? '',
        this.logMaxLen,
        this.eventsMaxLen,
        Schemas.jobLog.name,
        Schemas.jobLog.major,
        Schemas.jobEvent.name,
        Schemas.jobEvent.major,
      ],
    ];
  }

  /** Creates a job record (status queued or skipped) with its first status record and event. */
  async create(meta: JobMeta, reason?: string): Promise<TransitionResult> {
    const record: Omit<JobLogRecord, 'seq'> = { ts: meta.created_at, kind: 'status', status: meta.status };
    if (reason) record.reason = reason;
    const res = await this.transition(meta.id, {
      from: 'create',
      to: meta.status,
      fields: { ...meta, meta_v: META_VERSION } as Partial<JobMeta>,
      record,
      event: meta,
    });
    if (!res.ok) throw new InvalidError(`job ${meta.id} already exists`);
    return res;
  }

  /** A job's metadata and its waiting secrets (deleted as they are read), in one round trip. */
  async takeForStart(id: string): Promise<{ meta: JobMeta | null; secrets: Record<string, string> }> {
    const res =
      (await this.redis.pipeline().getdel(this.keys.secrets(id)).hgetall(this.keys.job(id)).exec()) ?? [];
    for (const [err] of res) if (err) throw err;
    const raw = res[0]?.[1] as string | null;
    const h = res[1]?.[1] as Record<string, string>;
    return {
      meta: h && Object.keys(h).length ? decodeMeta(h) : null,
      secrets: raw ? (JSON.parse(raw) as Record<string, string>) : {},
    };
  }

  async get(id: string): Promise<JobMeta | null> {
    const h = await this.redis.hgetall(this.keys.job(id));
    return Object.keys(h).length ? decodeMeta(h) : null;
  }

  async getMany(ids: string[]): Promise<JobMeta[]> {
    if (!ids.length) return [];
    const out: JobMeta[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const pipe = this.redis.pipeline();
      for (const id of ids.slice(i, i + 500)) pipe.hgetall(this.keys.job(id));
      const res = (await pipe.exec()) ?? [];
      for (const [err, h] of res) {
        if (err) throw err;
        if (h && Object.keys(h as object).length) out.push(decodeMeta(h as Record<string, string>));
      }
    }
    return out;
  }

  /** Ids of jobs in the given statuses. */
  async idsWithStatus(statuses: readonly JobStatus[]): Promise<string[]> {
    if (!statuses.length) return [];
    const pipe = this.redis.pipeline();
    for (const s of statuses) pipe.smembers(this.keys.status(s));
    const res = (await pipe.exec()) ?? [];
    return res.flatMap(([err, ids]) => {
      if (err) throw err;
      return ids as string[];
    });
  }

  /** Every job id, oldest first. */
  async allIds(): Promise<string[]> {
    return this.redis.zrange(this.keys.all, '0', '-1');
  }

  async list(statuses?: readonly JobStatus[]): Promise<JobMeta[]> {
    const ids = statuses ? await this.idsWithStatus(statuses) : await this.allIds();
    const jobs = await this.getMany(ids);
    return jobs.sort((a, b) =>
      a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : 1,
    );
  }

  /** Deletes a terminal job's metadata, log stream and any left-over secrets. */
  async delete(id: string): Promise<'deleted' | 'active' | 'missing'> {
    const k = this.keys;
    const code = await this.jobDelete(
      [k.job(id), k.log(id), k.all, k.secrets(id), ...JOB_STATUSES.map((s) => k.status(s))],
      [id, JOB_STATUSES.join(','), TERMINAL_JOB_STATUSES.join(',')],
    );
    return code === 1 ? 'deleted' : code === 0 ? 'active' : 'missing';
  }

  async procsOf(host: string): Promise<string[]> {
    return this.redis.smembers(this.keys.procs(host));
  }

  async forgetProc(host: string, id: string): Promise<void> {
    await this.redis.srem(this.keys.procs(host), id);
  }
}

function transitionResult([code, nextSeq, status]: [number, number, string]): TransitionResult {
  return {
    ok: code === 1,
    missing: code === -1,
    nextSeq: Number(nextSeq),
    status: status && isJobStatus(status) ? status : null,
  };
}

function encodeField(key: string, value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (JSON_FIELDS.has(key)) return JSON.stringify(value);
  if (BOOL_FIELDS.has(key)) return value ? '1' : '0';
  return String(value);
}

/** Turns a stored hash back into metadata; tolerant of missing optional fields. */
export function decodeMeta(h: Record<string, string>): JobMeta {
  // A record written by a newer coordbus may mean things this code does not know: refuse it.
  const version = Number(h.meta_v ?? META_VERSION);
  if (version > META_VERSION) throw new SchemaMismatchError('job-meta', version, META_VERSION);
  const json = <T>(k: string, fallback: T): T => {
    try {
      return h[k] ? (JSON.parse(h[k]) as T) : fallback;
    } catch {
      return fallback;
    }
  };
  const int = (k: string): number | null => (h[k] === undefined || h[k] === '' ? null : Number(h[k]));
  const str = (k: string): string | null => (h[k] === undefined ? null : h[k]);
  const status = isJobStatus(h.status) ? h.status : 'crashed';
  return {
    id: h.id,
    invocation_id: h.invocation_id ?? '',
    name: h.name ?? '',
    hook: h.hook ?? '',
    worktree: str('worktree'),
    tags: json<string[]>('tags', []),
    argv: json<string[]>('argv', []),
    shell: h.shell === '1',
    cwd: str('cwd'),
    env: json<Record<string, string>>('env', {}),
    secret_names: json<string[]>('secret_names', []),
    timeout_ms: int('timeout_ms'),
    sample_every: int('sample_every') ?? 1,
    keep_last: int('keep_last'),
    retention_ms: int('retention_ms'),
    background: h.background === '1',
    stdin: str('stdin'),
    status,
    exit_code: int('exit_code'),
    signal: str('signal'),
    reason: str('reason'),
    created_at: h.created_at,
    started_at: str('started_at'),
    finished_at: str('finished_at'),
    host: str('host'),
    runner_id: str('runner_id'),
    runner_pid: int('runner_pid'),
    runner_start: str('runner_start'),
    pgid: int('pgid'),
    proc_start: str('proc_start'),
    kill_grace_ms: int('kill_grace_ms'),
  };
}

/** Which job it is (`jobs ls --json` and the console's views share these fields and their order). */
export function jobIdentity(j: JobMeta) {
  return { name: j.name, hook: j.hook, worktree: j.worktree, tags: j.tags };
}

/** How it went: status, exit, reason and its three times (nothing secret). */
export function jobOutcome(j: JobMeta) {
  const { status, exit_code, signal, reason, created_at, started_at, finished_at } = j;
  return { status, exit_code, signal, reason, created_at, started_at, finished_at };
}

/** The JSON row `jobs ls --json` prints. */
export function publicRow(j: JobMeta): Record<string, unknown> {
  return {
    id: j.id,
    ...jobIdentity(j),
    invocation_id: j.invocation_id,
    ...jobOutcome(j),
    background: j.background,
    argv: j.argv,
    shell: j.shell,
    cwd: j.cwd,
    env: j.env,
    secret_names: j.secret_names,
    host: j.host,
    pid: j.pgid,
    timeout_ms: j.timeout_ms,
    sample_every: j.sample_every,
  };
}
