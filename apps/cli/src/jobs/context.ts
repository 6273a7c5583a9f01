import type { Queue } from 'bullmq';
import Redis, { Cluster } from 'ioredis';
import { cliRedisTimeoutMs, connectWithin } from '../redis-bound';
import { EnvelopeCodec, InvalidError, keyspaceFromEnv, Keyspace } from '@coordbus/envelope';
import {
  type BullJobData,
  CancelBus,
  createJobQueue,
  JobExecutor,
  type JobMeta,
  JobStore,
  JobSubmitter,
  RunnerIdentity,
} from '@coordbus/jobs';
import { EnvReader, JOBS_VARS, redactUrl, redisUrlOptions, SHARED_VARS } from '@coordbus/config';

/**
 * Settings the CLI reads from the same variables as the service, with the same definitions
 * (parser, bounds, default). A bad value is an InvalidError naming every bad variable.
 */
export function cliSettings(vars: NodeJS.ProcessEnv = process.env) {
  const env = new EnvReader(vars);
  const settings = {
    redisUrl: env.get(SHARED_VARS.REDIS_URL),
    redisCluster: env.get(SHARED_VARS.REDIS_CLUSTER),
    killGraceMs: env.get(JOBS_VARS.JOBS_KILL_GRACE),
    retentionMs: env.get(JOBS_VARS.JOBS_RETENTION),
    keepLast: env.get(JOBS_VARS.JOBS_KEEP_LAST),
    staleRunningAfterMs: env.get(JOBS_VARS.JOBS_STALE_RUNNING_AFTER),
    secretTtlMs: env.get(JOBS_VARS.JOBS_SECRET_TTL),
    logMaxLen: env.get(JOBS_VARS.JOBS_LOG_MAX_RECORDS),
    logLineMaxBytes: env.get(JOBS_VARS.JOBS_LOG_LINE_MAX_BYTES),
    logMaxBytes: env.get(JOBS_VARS.JOBS_LOG_MAX_BYTES),
  };
  if (env.problemList.length) throw new InvalidError(env.problemList.join('; '), [...env.problemList]);
  return settings;
}

/** Everything a `coordbus jobs` command talks to; only bullmq/ioredis, never Nest. */
export class JobsContext {
  readonly settings = cliSettings();
  readonly keyspace: Keyspace = keyspaceFromEnv();
  readonly redis: Redis;
  readonly store: JobStore;
  private queueInstance: Queue<BullJobData> | undefined;
  private extra: Redis[] = [];
  private readonly timeoutMs = cliRedisTimeoutMs();

  private constructor() {
    this.redis = openCliRedis(this.settings.redisUrl, this.settings.redisCluster, this.timeoutMs);
    this.redis.on('error', () => undefined);
    this.store = new JobStore(this.redis, this.keyspace, new EnvelopeCodec(), {
      logMaxLen: this.settings.logMaxLen,
    });
  }

  static async open(): Promise<JobsContext> {
    const ctx = new JobsContext();
    await connectWithin(ctx.redis, ctx.timeoutMs, redactUrl(ctx.settings.redisUrl));
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
      : // Blocking reads wait longer than any reply bound.
        this.redis.duplicate({ connectionName: `coordbus-cli:${name}`, commandTimeout: undefined });
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
      logLineMaxBytes: this.settings.logLineMaxBytes,
      logMaxBytes: this.settings.logMaxBytes,
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
function openCliRedis(url: string, cluster: boolean, timeoutMs: number): Redis {
  const retry = (times: number) => (times > 3 ? null : 200 * times);
  const common = {
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 2,
    connectionName: 'coordbus-cli:jobs',
  };
  if (!cluster) return new Redis(url, { lazyConnect: true, retryStrategy: retry, ...common });
  const { host, port, options } = redisUrlOptions(url);
  return new Cluster([{ host, port }], {
    lazyConnect: true,
    clusterRetryStrategy: retry,
    redisOptions: { ...common, ...options },
  }) as unknown as Redis;
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
