import type Redis from 'ioredis';
import { Registry } from 'prom-client';
import { Keyspace } from '@coordbus/envelope';
import {
  CANCEL_BUS,
  CancelBus,
  JOB_RUNNER,
  JOB_STORE,
  JobMeta,
  JobStore,
  RunnerIdentity,
} from '@coordbus/jobs';
import { KEYSPACE, METRICS_REGISTRY, REDIS } from '@coordbus/runtime';
import { newTestService } from '@coordbus/testing';
import type { JobsConfig } from './config';
import { BULL_REDIS, CoordinatorService, JOBS_CONFIG } from './coordinator.service';

const config = {
  pruneIntervalMs: 600_000,
  keepLast: 0,
  retentionMs: 60_000,
  staleRunningAfterMs: 300_000,
} as JobsConfig;

const finished = (id: string, finishedAgoMs: number): JobMeta =>
  ({
    id,
    worktree: 'main',
    status: 'succeeded',
    created_at: new Date(Date.now() - finishedAgoMs - 1000).toISOString(),
    started_at: null,
    finished_at: new Date(Date.now() - finishedAgoMs).toISOString(),
    keep_last: null,
    retention_ms: null,
  }) as unknown as JobMeta;

async function setup() {
  const { sut, mocks } = await newTestService(CoordinatorService, [
    { provide: JOBS_CONFIG, useValue: config },
    { provide: KEYSPACE, useValue: new Keyspace('') },
    { provide: METRICS_REGISTRY, useValue: new Registry() },
  ]);
  const store = mocks.of<JobStore>(JOB_STORE);
  Object.assign(store, { keys: { pruneLock: 'jobs:{jobs}:prune-lock' } });
  const runner = mocks.of<RunnerIdentity>(JOB_RUNNER);
  Object.assign(runner, { id: 'runner-1', host: 'this-host' });
  return { sut, mocks, store, runner, redis: mocks.of<Redis>(REDIS) };
}

describe('CoordinatorService', () => {
  it('gets its store, cancel bus, runner and BullMQ connection injected', async () => {
    const { sut, mocks } = await setup();
    expect(sut.store).toBe(mocks.of(JOB_STORE));
    expect(sut.runner).toBe(mocks.of(JOB_RUNNER));
    expect(mocks.of(CANCEL_BUS)).toBeDefined();
    expect(mocks.of(BULL_REDIS)).toBeDefined();
  });

  it('skips the retention pass while another replica holds the prune lock', async () => {
    const { sut, store, redis } = await setup();
    redis.set.mockResolvedValue(null as never);
    await sut.prune();
    expect(redis.set).toHaveBeenCalledWith('jobs:{jobs}:prune-lock', 'runner-1', 'PX', 600_000, 'NX');
    expect(store.list).not.toHaveBeenCalled();
  });

  it('with the lock, deletes the finished jobs past JOBS_RETENTION and keeps the rest', async () => {
    const { sut, store, redis } = await setup();
    redis.set.mockResolvedValue('OK' as never);
    store.list.mockResolvedValue([finished('old', 120_000), finished('new', 1000)]);
    store.delete.mockResolvedValue('deleted' as never);
    await sut.prune();
    expect(store.delete.mock.calls).toEqual([['old']]);
  });

  it('stops the cancel bus, the heartbeat and the BullMQ connection on shutdown', async () => {
    const { sut, mocks, store, runner, redis } = await setup();
    const bus = mocks.of<CancelBus>(CANCEL_BUS);
    const bull = mocks.of<Redis>(BULL_REDIS);
    bull.quit.mockResolvedValue('OK' as never);
    await sut.onApplicationShutdown();
    expect(bus.stop).toHaveBeenCalled();
    expect(runner.stopHeartbeat).toHaveBeenCalledWith(redis, store.keys);
    expect(bull.quit).toHaveBeenCalled();
  });
});
