import { spawnSync } from 'node:child_process';
import Redis from 'ioredis';
import type { Queue } from 'bullmq';
import { EnvelopeCodec, Keyspace, newUlid } from '@coordbus/envelope';
import { cleanupNamespace, testKeyspace, testRedisUrl, waitFor } from '@coordbus/testing';
import { JobMeta, isTerminal } from '../src/domain/job';
import { CancelBus } from '../src/exec/control';
import { JobExecutor } from '../src/exec/job-executor';
import { RunnerIdentity } from '../src/exec/runner';
import type { JobCgroups } from '../src/exec/cgroup';
import { NativeSpawner } from '../src/exec/native-spawner';
import { HelperSpawner } from '../src/exec/spawner';
import type { CgroupMoveWindow } from '../src/exec/move-window';
import { createJobQueue, BullJobData } from '../src/queue/bull';
import { JobRequest, JobSubmitter, newJob } from '../src/queue/submit';
import { JobStore } from '../src/store/job-store';
import { readLog } from '../src/store/job-log';

/** Real Redis, a fresh namespace, and the coordinator's parts wired as a replica would wire them. */
export class Harness {
  readonly keyspace: Keyspace;
  readonly redis: Redis;
  readonly store: JobStore;
  readonly runner = new RunnerIdentity('replica');
  readonly bus: CancelBus;
  readonly executor: JobExecutor;
  private queueInstance: Queue<BullJobData> | undefined;
  readonly submitter: JobSubmitter;
  private extra: Redis[] = [];
  readonly url: string;
  readonly spawner: HelperSpawner | undefined;
  readonly nativeSpawner: NativeSpawner | undefined;

  constructor(
    label: string,
    options: {
      killGraceMs?: number;
      logLineMaxBytes?: number;
      logMaxBytes?: number;
      /** A Redis of the test's own (default: the shared test Redis). */
      redisUrl?: string;
      onWarn?: (msg: string, extra?: Record<string, unknown>) => void;
      /**
       * 'helper': fork jobs from a HelperSpawner, as a replica without the spawn addon does;
       * 'native': start them with the addon (NativeSpawner), as a replica does; default: fork here.
       */
      spawner?: 'in-process' | 'helper' | 'native';
      /** Each job in a cgroup v2 of its own, as a replica does where it can. */
      cgroups?: JobCgroups;
      /** When the helper moves into a job's cgroup, or a natively spawned job joins it itself (default: the window it learns). */
      moveWindow?: CgroupMoveWindow;
      /** The helper's niceness, and its jobs' (HelperSpawnerOptions.nice). */
      nice?: number;
    } = {},
  ) {
    this.keyspace = testKeyspace(label);
    this.url = options.redisUrl ?? testRedisUrl();
    this.redis = new Redis(this.url, { maxRetriesPerRequest: null });
    this.store = new JobStore(this.redis, this.keyspace, new EnvelopeCodec());
    this.bus = new CancelBus(this.redis, this.keyspace, this.store, 200);
    if (options.spawner === 'helper')
      this.spawner = new HelperSpawner({
        onWarn: options.onWarn,
        moveWindow: options.moveWindow,
        nice: options.nice,
      });
    if (options.spawner === 'native') {
      const native = NativeSpawner.open({ nice: options.nice, moveWindow: options.moveWindow });
      if (!(native instanceof NativeSpawner)) throw new Error(native.unavailable);
      this.nativeSpawner = native;
    }
    this.executor = new JobExecutor(this.redis, this.store, this.runner, this.bus, {
      spawner: this.spawner ?? this.nativeSpawner,
      cgroups: options.cgroups,
      killGraceMs: options.killGraceMs ?? 500,
      logMaxLen: 10_000,
      logLineMaxBytes: options.logLineMaxBytes,
      logMaxBytes: options.logMaxBytes,
      onWarn: options.onWarn,
    });
    this.submitter = new JobSubmitter(this.redis, this.store, this.queue);
  }

  queue = (): Queue<BullJobData> => (this.queueInstance ??= createJobQueue(this.redis, this.keyspace));

  async start(): Promise<this> {
    await this.runner.startHeartbeat(this.redis, this.store.keys);
    await this.bus.start();
    if (this.spawner && !(await this.spawner.start()))
      throw new Error('the job spawner process did not start');
    return this;
  }

  connection(): Redis {
    const c = new Redis(this.url);
    this.extra.push(c);
    return c;
  }

  async close(): Promise<void> {
    await this.bus.stop();
    await this.runner.stopHeartbeat(this.redis, this.store.keys);
    this.nativeSpawner?.close();
    this.spawner?.close();
    await this.queueInstance?.close();
    await cleanupNamespace(this.redis, this.keyspace);
    for (const c of this.extra) c.disconnect();
    this.redis.disconnect();
  }

  request(over: Partial<JobRequest> = {}): JobRequest {
    return {
      name: 'job',
      hook: 'test',
      worktree: '/w/a',
      tags: [],
      argv: ['true'],
      shell: false,
      cwd: process.cwd(),
      env: {},
      timeout_ms: null,
      sample_every: 1,
      keep_last: null,
      retention_ms: null,
      background: false,
      ...over,
    };
  }

  /** Records a job (queued) and runs it here, as a foreground CLI would. */
  async run(over: Partial<JobRequest> = {}): Promise<JobMeta> {
    const { meta, secrets } = newJob(this.request(over), newUlid());
    await this.submitter.recordForeground(meta);
    const final = await this.executor.execute(meta.id, { secrets });
    return final!;
  }

  /** Records a queued job without running it. */
  async queued(over: Partial<JobRequest> = {}, invocationId = newUlid()): Promise<JobMeta> {
    const { meta } = newJob(this.request(over), invocationId);
    return this.submitter.recordForeground(meta);
  }

  log(id: string) {
    return readLog(this.redis, this.store.keys.log(id), this.store.codec);
  }

  async statusRecords(id: string): Promise<string[]> {
    return (await this.log(id)).filter((r) => r.kind === 'status').map((r) => r.status!);
  }

  async waitStatus(
    id: string,
    pred: (s: string) => boolean,
    what: string,
    timeoutMs = 10_000,
  ): Promise<JobMeta> {
    return waitFor<JobMeta>(
      async () => {
        const j = await this.store.get(id);
        return (j && pred(j.status) ? j : undefined) as JobMeta;
      },
      what,
      timeoutMs,
    );
  }

  waitTerminal(id: string, timeoutMs = 10_000): Promise<JobMeta> {
    return this.waitStatus(id, (s) => isTerminal(s as JobMeta['status']), `job ${id} to end`, timeoutMs);
  }
}

/** A pid that certainly belonged to a process that has exited. */
export function deadPid(): number {
  return spawnSync('true').pid!;
}
