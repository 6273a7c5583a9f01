import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { Keyspace } from '@coordbus/envelope';
import { KEYSPACE, LOGGER, METRICS_REGISTRY, ReadinessService, REDIS } from '@coordbus/runtime';
import type { JobsConfig } from './config';
import {
  CANCEL_BUS,
  CancelBus,
  JOB_RUNNER,
  JOB_STORE,
  HelperSpawner,
  NativeSpawner,
  JobCgroups,
  JobExecutor,
  JobStore,
  JobWorkerHost,
  prune,
  reconcileHost,
  RUNNER_TTL_MS,
  RunnerIdentity,
  WorkspaceRegistry,
} from '@coordbus/jobs';

export const JOBS_CONFIG = Symbol('coordbus:jobs-config');
/** BullMQ's worker connection: retries forever (it blocks on it), separate from the command one. */
export const BULL_REDIS = Symbol('coordbus:jobs:bull-redis');

/**
 * One job-coordinator replica: a BullMQ worker running background hook jobs, the cancel
 * listener, the host reconcile pass (at boot and periodically) and periodic retention (one
 * replica at a time, under a lock).
 */
@Injectable()
export class CoordinatorService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly workspaces: WorkspaceRegistry;
  private worker: JobWorkerHost | undefined;
  private spawner: HelperSpawner | NativeSpawner | undefined;
  private cgroups: JobCgroups | undefined;
  private timers: NodeJS.Timeout[] = [];
  private booting: Promise<void> = Promise.resolve();
  private stopping = false;
  private readonly finished: Counter<'status'>;
  private readonly startLatency: Histogram;
  private readonly runningGauge: Gauge;

  constructor(
    @Inject(JOBS_CONFIG) private readonly config: JobsConfig,
    @Inject(KEYSPACE) private readonly keyspace: Keyspace,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS_REGISTRY) registry: Registry,
    private readonly readiness: ReadinessService,
    @Inject(JOB_STORE) readonly store: JobStore,
    @Inject(CANCEL_BUS) private readonly bus: CancelBus,
    @Inject(JOB_RUNNER) readonly runner: RunnerIdentity,
    @Inject(BULL_REDIS) private readonly bullConnection: Redis,
  ) {
    this.workspaces = new WorkspaceRegistry(redis, this.store.keys);
    this.finished = new Counter({
      name: 'coordbus_jobs_finished_total',
      help: 'Jobs this replica ran to a terminal status',
      labelNames: ['status'],
      registers: [registry],
    });
    this.startLatency = new Histogram({
      name: 'coordbus_jobs_submit_to_start_seconds',
      help: 'Time from a job being submitted to its process starting',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
      registers: [registry],
    });
    this.runningGauge = new Gauge({
      name: 'coordbus_jobs_running',
      help: 'Jobs this replica is running now',
      registers: [registry],
      collect: () => this.runningGauge.set(this.bus.running.length),
    });
  }

  /**
   * Starts in the background: with Redis down the service still comes up (serving /healthz and a
   * not-ready /readyz) and starts its worker once Redis answers.
   */
  onApplicationBootstrap(): void {
    this.readiness.register('worker', () => (this.worker?.running ? true : 'worker not started'));
    this.booting = this.boot().catch((err: unknown) =>
      this.logger.error({ err }, 'job worker failed to start'),
    );
  }

  private async boot(): Promise<void> {
    const warn = (msg: string, extra?: Record<string, unknown>) => this.logger.warn(extra ?? {}, msg);
    for (let attempt = 1; !this.stopping; attempt++) {
      try {
        await this.redis.ping();
        break;
      } catch (err) {
        if (attempt === 1) warn('waiting for Redis before starting the job worker', { err: String(err) });
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    if (this.stopping) return;
    await this.runner.startHeartbeat(this.redis, this.store.keys, (err) =>
      warn('runner heartbeat failed', { err: String(err) }),
    );
    await this.bus.start();
    // Reconcile before taking jobs: what a dead predecessor on this host left running is crashed first.
    await this.reconcile();
    if (this.stopping) return;
    // Jobs start from this process without a fork where the spawn addon was built; else they are
    // forked by a small helper process, not by this one (libs/jobs exec/native-spawner, spawner).
    const native = this.config.nativeSpawn
      ? NativeSpawner.open({ nice: this.config.nice })
      : { unavailable: 'JOBS_NATIVE_SPAWN=0' };
    if (native instanceof NativeSpawner) {
      this.spawner = native;
      this.logger.info('jobs are started by the spawn addon, without a fork');
    } else {
      const helper = new HelperSpawner({ onWarn: warn, nice: this.config.nice });
      this.spawner = helper;
      this.logger.info({ reason: native.unavailable }, 'jobs are forked by a spawner helper process');
      if (!(await helper.start())) warn('job spawner process did not start: jobs are spawned in process');
    }
    const cgroups = this.config.cgroup ? await JobCgroups.open() : { unavailable: 'JOBS_CGROUP=0' };
    if (cgroups instanceof JobCgroups) this.cgroups = cgroups;
    if (cgroups instanceof JobCgroups)
      this.logger.info({ dir: cgroups.dir }, 'each job runs in a cgroup v2 of its own');
    else
      this.logger.info(
        { reason: cgroups.unavailable },
        'jobs are contained by process groups and a descendant sweep (no cgroup v2 here)',
      );
    const executor = new JobExecutor(this.redis, this.store, this.runner, this.bus, {
      spawner: this.spawner,
      cgroups: cgroups instanceof JobCgroups ? cgroups : undefined,
      killGraceMs: this.config.killGraceMs,
      logMaxLen: this.config.logMaxLen,
      logLineMaxBytes: this.config.logLineMaxBytes,
      logMaxBytes: this.config.logMaxBytes,
      workspaceRoots: this.config.workspaceRoots,
      onWarn: warn,
    });
    this.worker = new JobWorkerHost(
      this.bullConnection,
      this.keyspace,
      this.store,
      executor,
      this.bus,
      this.runner,
      {
        concurrency: this.config.concurrency,
        lockDurationMs: this.config.lockDurationMs,
        stalledIntervalMs: this.config.stalledIntervalMs,
        shutdownGraceMs: this.config.shutdownGraceMs,
        onWarn: warn,
        onJobDone: (status, latency) => {
          this.finished.inc({ status });
          if (latency !== null) this.startLatency.observe(latency / 1000);
        },
      },
    );
    this.worker.start();
    // Submitters refuse at once a job whose cwd no live replica serves (libs/jobs exec/workspace).
    const advertise = () =>
      this.workspaces
        .advertise(this.runner.id, this.config.workspaceRoots, RUNNER_TTL_MS)
        .catch((err: unknown) => warn('workspace advert failed', { err: String(err) }));
    await advertise();
    this.every(RUNNER_TTL_MS / 3, advertise);
    this.every(this.config.reconcileIntervalMs, () => this.reconcile());
    if (this.config.pruneIntervalMs > 0) this.every(this.config.pruneIntervalMs, () => this.prune());
    this.logger.info(
      { runner: this.runner.id, concurrency: this.config.concurrency, workspace: this.config.workspaceRoots },
      'job worker started',
    );
  }

  private every(ms: number, fn: () => Promise<void>): void {
    const t = setInterval(() => void fn(), ms);
    t.unref();
    this.timers.push(t);
  }

  async reconcile(): Promise<void> {
    try {
      const r = await reconcileHost(this.store, this.runner);
      if (r.crashed.length || r.reaped.length)
        this.logger.warn(r, 'reconcile: jobs of a dead runner on this host');
    } catch (err) {
      this.logger.warn({ err }, 'reconcile failed');
    }
  }

  async prune(): Promise<void> {
    try {
      // One replica prunes at a time; the lock outlives a slow pass but not a dead replica.
      const got = await this.redis.set(
        this.store.keys.pruneLock,
        this.runner.id,
        'PX',
        Math.max(60_000, this.config.pruneIntervalMs),
        'NX',
      );
      if (!got) return;
      const r = await prune(
        this.store,
        {
          keepLast: this.config.keepLast,
          retentionMs: this.config.retentionMs,
          staleRunningAfterMs: this.config.staleRunningAfterMs,
        },
        { localHost: this.runner.host },
      );
      if (r.evicted.length || r.crashed.length)
        this.logger.info({ evicted: r.evicted.length, crashed: r.crashed }, 'retention pass');
    } catch (err) {
      this.logger.warn({ err }, 'retention pass failed');
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    await this.booting.catch(() => undefined);
    for (const t of this.timers) clearInterval(t);
    await this.workspaces.withdraw(this.runner.id).catch(() => undefined);
    await this.worker?.close();
    // What a job left running past the shutdown grace ends with the replica, as the next start
    // on this host would end it anyway.
    await this.cgroups?.close(this.config.killGraceMs);
    this.spawner?.close();
    await this.bus.stop();
    await this.runner.stopHeartbeat(this.redis, this.store.keys);
    await this.bullConnection.quit().catch(() => this.bullConnection.disconnect());
  }
}
