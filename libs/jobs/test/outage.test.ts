import Redis from 'ioredis';
import { JobEvent, newUlid, Schemas, TERMINAL_JOB_STATUSES } from '@coordbus/envelope';
import { TestRedisServer, waitFor } from '@coordbus/testing';
import { isTerminal, JobMeta } from '../src/domain/job';
import { newJob } from '../src/queue/submit';
import { JobWorkerHost } from '../src/queue/worker';
import { Harness } from './harness';

jest.setTimeout(120_000);

const LINES = 30;

/**
 * Issue 13: Redis at `maxmemory` (noeviction) while a replica runs background jobs is an outage
 * to wait out. Before, a claim refused by OOM failed the BullMQ job and left the job `queued`
 * for ever, and one refused log XADD made the job's writer drop every later line. This Redis is
 * the test's own: CONFIG SET maxmemory here touches nobody.
 */
describe('background jobs through Redis full (own redis-server, noeviction)', () => {
  const server = new TestRedisServer({ args: ['--maxmemory-policy', 'noeviction'] });
  let h: Harness;
  let admin: Redis;
  let bull: Redis;
  let worker: JobWorkerHost;
  const warnings: string[] = [];

  beforeAll(async () => {
    await server.start();
    admin = new Redis(server.url);
    bull = new Redis(server.url, { maxRetriesPerRequest: null });
    h = await new Harness('jobs-oom', { redisUrl: server.url, onWarn: (msg) => warnings.push(msg) }).start();
    worker = new JobWorkerHost(bull, h.keyspace, h.store, h.executor, h.bus, h.runner, {
      concurrency: 2,
      lockDurationMs: 30_000,
      stalledIntervalMs: 5_000,
      shutdownGraceMs: 1_000,
      onWarn: (msg) => warnings.push(msg),
    });
    worker.start();
  });
  afterAll(async () => {
    await admin.config('SET', 'maxmemory', '0').catch(() => undefined);
    await worker.close();
    await h.close();
    bull.disconnect();
    admin.disconnect();
    await server.dispose();
  });

  it('every job reaches one terminal status with its whole log, however the outage met it', async () => {
    // Each job prints numbered lines over ~1.5 s; with two at a time, six of them span the
    // outage: some run through it, some are claimed or finish during it, some wait in the queue.
    const script = `[ "$API_TOKEN" = s3cret ] || exit 9; i=1; while [ $i -le ${LINES} ]; do echo "line $i"; i=$((i+1)); sleep 0.05; done`;
    const ids: string[] = [];
    for (let n = 0; n < 6; n++) {
      const { meta, secrets } = newJob(
        h.request({
          name: `oom-${n}`,
          argv: ['sh', '-c', script],
          background: true,
          env: { API_TOKEN: 's3cret' },
        }),
        newUlid(),
      );
      ids.push((await h.submitter.submitBackground(meta, secrets)).id);
    }
    // The outage begins while a job is printing.
    await waitFor(
      async () => {
        for (const id of ids) if ((await h.log(id)).some((r) => r.kind === 'stdout')) return true;
        return false;
      },
      'a job to print',
      30_000,
      20,
    );
    const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]);
    await admin.config('SET', 'maxmemory', String(Math.floor(used / 2)));
    const fullFrom = Date.now();
    let fullTo = Infinity;
    try {
      // The outage is real: a plain write is refused.
      await expect(admin.set('oom:probe', 'x')).rejects.toThrow(/^OOM/);
      await new Promise((r) => setTimeout(r, 3000));
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      fullTo = Date.now();
    }

    const jobs = (await waitFor(
      async () => {
        const js = (await h.store.getMany(ids)) as JobMeta[];
        return js.length === ids.length && js.every((j) => isTerminal(j.status)) ? js : undefined;
      },
      'every job to reach a terminal status',
      90_000,
      100,
    )) as JobMeta[];
    // Nobody's fault but Redis's: each job ran once, to the end, with its secret.
    expect(jobs.map((j) => [j.name, j.status, j.exit_code])).toEqual(
      ids.map((_, n) => [`oom-${n}`, 'succeeded', 0]),
    );
    for (const id of ids) {
      const log = await h.log(id);
      const statuses = log.filter((r) => r.kind === 'status').map((r) => r.status!);
      expect(statuses.filter((s) => (TERMINAL_JOB_STATUSES as readonly string[]).includes(s))).toEqual([
        'succeeded',
      ]);
      expect(log.filter((r) => r.kind === 'stdout').map((r) => r.line)).toEqual(
        Array.from({ length: LINES }, (_, i) => `line ${i + 1}`),
      );
      // Seqs strictly increase (the stream ids are the seqs).
      const seqs = log.map((r) => r.seq);
      expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    }
    // One terminal lifecycle event per job.
    const events = (await h.redis.xrange(h.keyspace.jobEvents, '-', '+')).map(
      ([, f]) => h.store.codec.decode(Schemas.jobEvent, f) as JobEvent,
    );
    for (const id of ids)
      expect(
        events.filter(
          (e) => e.job_id === id && (TERMINAL_JOB_STATUSES as readonly string[]).includes(e.status),
        ),
      ).toHaveLength(1);
    // The outage was met, not missed: lines printed while Redis was full are there too.
    const during = (await Promise.all(ids.map((id) => h.log(id))))
      .flat()
      .filter((r) => r.kind === 'stdout' && Date.parse(r.ts) > fullFrom && Date.parse(r.ts) < fullTo);
    expect(during.length).toBeGreaterThan(0);
  });
});
