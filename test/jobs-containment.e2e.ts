import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { EnvelopeCodec, Keyspace } from '@coordbus/envelope';
import {
  cleanupNamespace,
  ServiceProcess,
  startService,
  testKeyspace,
  testRedisUrl,
  waitFor,
} from '@coordbus/testing';
import { type JobMeta, JobStore, readLog } from '@coordbus/jobs';
import { COORDBUS, run } from './coord-helpers';

/**
 * Jobs are contained, against a built job-coordinator process and the real CLI: whatever a job
 * prints, the coordinator's memory stays flat; a job never sees the coordinator's own environment.
 */
jest.setTimeout(180_000);

describe('job containment (built job-coordinator + coordbus CLI)', () => {
  let redis: Redis;
  let keyspace: Keyspace;
  let store: JobStore;
  let dir: string;
  let svc: ServiceProcess;

  const env = () => ({ REDIS_URL: testRedisUrl(), COORDBUS_NAMESPACE: keyspace.namespace });
  const cli = (args: string[]) => run(process.execPath, [COORDBUS, ...args], { cwd: dir, env: env() });
  const submit = async (args: string[]): Promise<JobMeta> => {
    const r = await cli(['jobs', 'run', '--json', '--hook', 'contain', ...args]);
    expect(r).toMatchObject({ code: 0 });
    return JSON.parse(r.stdout) as JobMeta;
  };
  const waitEnded = (id: string, timeoutMs = 60_000) =>
    waitFor<JobMeta>(
      async () => {
        const j = await store.get(id);
        return (
          j && ['succeeded', 'failed', 'cancelled', 'timed-out', 'signaled'].includes(j.status)
            ? j
            : undefined
        ) as JobMeta;
      },
      `job ${id} to end`,
      timeoutMs,
    );
  const kib = (field: 'VmRSS' | 'VmHWM') => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
      readFileSync(`/proc/${svc.child.pid}/status`, 'utf8'),
    );
    return Number(m![1]);
  };
  const lines = async (id: string) =>
    (await readLog(redis, store.keys.log(id), store.codec))
      .filter((r) => r.kind !== 'status')
      .map((r) => r.line!);

  beforeAll(async () => {
    redis = new Redis(testRedisUrl());
    keyspace = testKeyspace('jobs-contain');
    store = new JobStore(redis, keyspace, new EnvelopeCodec());
    dir = mkdtempSync(join(tmpdir(), 'coordbus-contain-'));
    svc = await startService(
      'job-coordinator',
      {
        ...env(),
        JOBS_CONCURRENCY: '1',
        JOBS_KILL_GRACE: '1s',
        JOBS_RECONCILE_INTERVAL: '1h',
        JOBS_PRUNE_INTERVAL: '0',
        // The coordinator's own secrets: no job may see them.
        DEPLOY_TOKEN: 'coordinator-token-value',
        DATABASE_URL: 'postgresql://archivist:hunter2-db-password@db.internal/archive',
      },
      60_000,
    );
    await waitFor(() => svc.lines.some((l) => l.includes('job worker started')), 'the job worker', 30_000);
  });
  afterAll(async () => {
    await svc?.stop('SIGKILL');
    await cleanupNamespace(redis, keyspace);
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a job printing 50 MB without a newline leaves the coordinator's memory flat; the line is truncated with a marker", async () => {
    // Warm up (first job loads code paths), then take the baseline.
    await waitEnded((await submit(['--', 'true'])).id);
    const before = kib('VmRSS');
    const hwmBefore = kib('VmHWM');
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, kib('VmRSS'))), 25);
    const job = await submit(['--shell', '--', "head -c 52428800 /dev/zero | tr '\\0' x; echo; echo after"]);
    const done = await waitEnded(job.id, 120_000);
    clearInterval(sampler);
    // The high-water mark catches a spike between two samples (it only moves past its start-up value).
    const hwmAfter = kib('VmHWM');
    if (hwmAfter > hwmBefore) peak = Math.max(peak, hwmAfter);
    expect(done.status).toBe('succeeded');
    const growthMiB = (peak - before) / 1024;
    expect(growthMiB).toBeLessThan(64);
    const out = await lines(job.id);
    const m = /^(x+) …\[line truncated: (\d+) more bytes dropped\]$/.exec(out[0]);
    expect(m).not.toBeNull();
    expect(m![1].length + Number(m![2])).toBe(52_428_800);
    expect(out[1]).toBe('after');
  });

  it("a job starts from a minimal environment: never the coordinator's own variables", async () => {
    const job = await submit(['--env', 'MINE=declared', '--', 'env']);
    expect((await waitEnded(job.id)).status).toBe('succeeded');
    const vars = new Map(
      (await lines(job.id)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(vars.get('MINE')).toBe('declared');
    expect(vars.get('COORDBUS_JOB_ID')).toBe(job.id);
    expect(vars.has('PATH')).toBe(true);
    for (const name of ['REDIS_URL', 'DEPLOY_TOKEN', 'DATABASE_URL', 'COORDBUS_NAMESPACE', 'HTTP_PORT'])
      expect(vars.has(name)).toBe(false);
    const all = (await lines(job.id)).join('\n');
    expect(all).not.toContain('coordinator-token-value');
    expect(all).not.toContain('hunter2-db-password');
  });
});
