import type { Queue } from 'bullmq';
import Redis, { Cluster } from 'ioredis';
import { EnvelopeCodec, InvalidError, keyspaceFromEnv, Keyspace, UnavailableError } from '@coordbus/envelope';
import {
  type BullJobData,
  CancelBus,
  createJobQueue,
  JOB_DEFAULTS,
  JobExecutor,
  type JobMeta,
  JobStore,
  JobSubmitter,
  parseDuration,
  RunnerIdentity,
} from '@coordbus/jobs';

/** Settings the CLI reads from the same variables as the service (see the service's config). */
export function cliSettings(env: NodeJS.ProcessEnv = process.env) {
  const dur = (name: string, fallback: number) => {
    const raw = env[name];
    if (!raw) return fallback;
    const ms = parseDuration(raw) ?? (/^\d+$/.test(raw) ? Number(raw) : undefined);
    if (ms === undefined)
      throw new InvalidError(`${name} must be a duration like 5s, 10m (got ${JSON.stringify(raw)})`);
    return ms;
  };
  const int = (name: string, fallback: number) => {
    const raw = env[name];
    if (!raw) return fallback;
    if (!/^\d+$/.test(raw))
      throw new InvalidError(`${name} must be a non-negative integer (got ${JSON.stringify(raw)})`);
    return Number(raw);
  };
  const bool = (name: string) => {
    const raw = (env[name] ?? '').trim().toLowerCase();
    if (['', '0', 'false', 'no', 'off'].includes(raw)) return false;
    if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
    throw new InvalidError(`${name} must be a boolean (1/0, true/false) (got ${JSON.stringify(env[name])})`);
  };
  return {
    redisUrl: env.REDIS_URL || 'redis://127.0.0.1:6379',
    redisCluster: bool('REDIS_CLUSTER'),
    killGraceMs: dur('JOBS_KILL_GRACE', JOB_DEFAULTS.killGraceMs),
    retentionMs: dur('JOBS_RETENTION', JOB_DEFAULTS.retentionMs),
    keepLast: int('JOBS_KEEP_LAST', JOB_DEFAULTS.keepLast),
    staleRunningAfterMs: dur('JOBS_STALE_RUNNING_AFTER', JOB_DEFAULTS.staleRunningAfterMs),
    secretTtlMs: dur('JOBS_SECRET_TTL', JOB_DEFAULTS.secretTtlMs),
    logMaxLen: int('JOBS_LOG_MAX_RECORDS', JOB_DEFAULTS.logMaxLen),
  };
}

/** Everything a `coordbus jobs` command talks to; only bullmq/ioredis, never Nest. */
export class JobsContext {
  readonly settings = cliSettings();
  readonly keyspace: Keyspace = keyspaceFromEnv();
  readonly redis: Redis;
  readonly store: JobStore;
  private queueInstance: Queue<BullJobData> | undefined;
  private extra: Redis[] = [];

  private constructor() {
    this.redis = openCliRedis(this.settings.redisUrl, this.settings.redisCluster);
    this.redis.on('error', () => undefined);
    this.store = new JobStore(this.redis, this.keyspace, new EnvelopeCodec(), {
      logMaxLen: this.settings.logMaxLen,
    });
  }

  static async open(): Promise<JobsContext> {
    const ctx = new JobsContext();
    try {
      await ctx.redis.connect();
    } catch (err) {
      ctx.redis.disconnect();
      throw new UnavailableError(
        `cannot reach Redis at ${redact(ctx.settings.redisUrl)}: ${(err as Error).message}`,
      );
    }
    return ctx;
  }

  /** The BullMQ queue, loaded only by the commands that need it. */
  queue = (): Queue<BullJobData> => {
    if (!this.queueInstance) {
      this.queueInstance = createJobQueue(this.redis, this.keyspace);
    }
    return this.queueInstance;
  };

  submitter(): JobSubmitter {
    return new JobSubmitter(this.redis, this.store, this.queue, this.settings.secretTtlMs);
  }

  /** A second connection (for blocking reads or subscriptions). */
  duplicate(name: string): Redis {
    // A Cluster's duplicate() takes (startupNodes, options), a Redis' takes options.
    const c = (this.redis as { isCluster?: boolean }).isCluster
      ? ((this.redis as unknown as Cluster).duplicate() as unknown as Redis)
      : this.redis.duplicate({ connectionName: `coordbus-cli:${name}` });
    c.on('error', () => undefined);
    this.extra.push(c);
    return c;
  }

  async close(): Promise<void> {
    await this.queueInstance?.close().catch(() => undefined);
    for (const c of this.extra) c.disconnect();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  /**
   * Runs foreground jobs in this process with the same records a replica leaves. The CLI is
   * the job's runner: it heartbeats, listens for cancel, and Ctrl-C cancels the job's group.
   */
  async runForeground(meta: JobMeta, secrets: Record<string, string>, tee = true): Promise<JobMeta | null> {
    const runner = new RunnerIdentity('cli');
    const bus = new CancelBus(this.redis, this.keyspace, this.store);
    await runner.startHeartbeat(this.redis, this.store.keys);
    await bus.start();
    const executor = new JobExecutor(this.redis, this.store, runner, bus, {
      killGraceMs: this.settings.killGraceMs,
      logMaxLen: this.settings.logMaxLen,
      onWarn: (msg, extra) =>
        process.stderr.write(`coordbus: warning: ${msg} ${extra ? JSON.stringify(extra) : ''}\n`),
    });
    const onSignal = () => {
      void this.store
        .transition(meta.id, {
          from: ['running'],
          to: 'cancelling',
          fields: { reason: 'interrupted' },
          event: meta,
        })
        .finally(() => bus.fire(meta.id));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      return await executor.execute(meta.id, {
        secrets,
        tee: tee ? { stdout: process.stdout, stderr: process.stderr } : undefined,
      });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await bus.stop();
      await runner.stopHeartbeat(this.redis, this.store.keys);
    }
  }
}

/**
 * The CLI's connection: fails fast when Redis is down (a few retries, then an error). With
 * REDIS_CLUSTER=1 an ioredis Cluster seeded from the URL (its user, password and TLS apply to
 * every node), typed as Redis: both share ioredis' command interface.
 */
function openCliRedis(url: string, cluster: boolean): Redis {
  const retry = (times: number) => (times > 3 ? null : 200 * times);
  const common = { connectTimeout: 3000, maxRetriesPerRequest: 2, connectionName: 'coordbus-cli:jobs' };
  if (!cluster) return new Redis(url, { lazyConnect: true, retryStrategy: retry, ...common });
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  return new Cluster([{ host, port: Number(u.port || 6379) }], {
    lazyConnect: true,
    clusterRetryStrategy: retry,
    redisOptions: {
      ...common,
      username: u.username ? decodeURIComponent(u.username) : undefined,
      password: u.password ? decodeURIComponent(u.password) : undefined,
      tls: u.protocol === 'rediss:' ? { servername: host } : undefined,
    },
  }) as unknown as Redis;
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

/** Runs `fn` with a context and always closes it. */
export async function withContext<T>(fn: (ctx: JobsContext) => Promise<T>): Promise<T> {
  const ctx = await JobsContext.open();
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}
