import { spawn } from 'node:child_process';
import type { JobLogRecord } from '@coordbus/envelope';
import { Schemas } from '@coordbus/envelope';
import { waitFor } from '@coordbus/testing';
import { processStartTime } from '../src/exec/proc';
import { readOrFollow } from '../src/ops/follow';
import { newJob } from '../src/queue/submit';
import { readLog } from '../src/store/job-log';
import { deadPid, Harness } from './harness';

describe('job logs', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await new Harness('jobs-logs').start();
  });
  afterAll(() => h.close());

  it('sampling drops stdout/stderr records but keeps the numbering, so gaps show', async () => {
    const job = await h.run({
      argv: ['sh', '-c', 'for i in $(seq 1 20); do echo line$i; done; echo oops >&2'],
      sample_every: 5,
    });
    const log = await h.log(job.id);
    const lines = log.filter((r) => r.kind !== 'status');
    // seq 1 queued, 2 running, 3..22 the 20 lines, 23 stderr; only multiples of 5 kept.
    expect(lines.map((r) => r.seq)).toEqual([5, 10, 15, 20]);
    expect(lines.map((r) => r.line)).toEqual(['line3', 'line8', 'line13', 'line18']);
    // Status records are never sampled: all three are there, the terminal one after the gap.
    expect(log.filter((r) => r.kind === 'status').map((r) => [r.seq, r.status])).toEqual([
      [1, 'queued'],
      [2, 'running'],
      [24, 'succeeded'],
    ]);
  });

  it('reads by --seq, --since-seq, kind and time', async () => {
    const job = await h.run({ argv: ['sh', '-c', 'echo a; echo b; echo c'] });
    const key = h.store.keys.log(job.id);
    expect((await readLog(h.redis, key, h.store.codec, { seq: 4 })).map((r) => r.line)).toEqual(['b']);
    expect((await readLog(h.redis, key, h.store.codec, { sinceSeq: 4 })).map((r) => r.seq)).toEqual([5, 6]);
    expect(
      (await readLog(h.redis, key, h.store.codec, { kinds: new Set(['status'] as const) })).map(
        (r) => r.status,
      ),
    ).toEqual(['queued', 'running', 'succeeded']);
    expect(await readLog(h.redis, key, h.store.codec, { sinceMs: Date.now() + 60_000 })).toEqual([]);
  });

  it('a record from a newer schema version is refused with SchemaMismatch', async () => {
    const job = await h.run();
    await h.redis.xadd(h.store.keys.log(job.id), '99-0', 'type', Schemas.jobLog.name, 'v', '2', 'data', '{}');
    await expect(readLog(h.redis, h.store.keys.log(job.id), h.store.codec)).rejects.toMatchObject({
      code: 'SchemaMismatch',
    });
  });

  it('--follow streams records as they come and ends at the terminal status', async () => {
    const { meta, secrets } = newJob(
      h.request({ argv: ['sh', '-c', 'echo first; sleep 0.5; echo second; sleep 0.3; exit 4'] }),
      'INV',
    );
    await h.submitter.recordForeground(meta);
    const seen: JobLogRecord[] = [];
    const following = readOrFollow(h.store, h.connection(), meta.id, {}, (r) => seen.push(r), {
      follow: true,
      localHost: h.runner.host,
      blockMs: 300,
    });
    await h.executor.execute(meta.id, { secrets });
    const res = await following;
    expect(res.terminal).toMatchObject({ status: 'failed', exit_code: 4 });
    expect(res.message).toBeUndefined();
    expect(seen.map((r) => r.line ?? r.status)).toEqual(['queued', 'running', 'first', 'second', 'failed']);
  });

  it('--follow ends with a message when the job is found crashed (its runner died)', async () => {
    const job = await h.queued();
    const orphan = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    await h.store.transition(job.id, {
      from: ['queued'],
      to: 'running',
      fields: {
        host: h.runner.host,
        runner_id: 'cli:gone',
        runner_pid: deadPid(),
        started_at: new Date().toISOString(),
        pgid: orphan.pid!,
        proc_start: processStartTime(orphan.pid!),
      },
    });
    const seen: string[] = [];
    const exited = new Promise((r) => orphan.once('exit', r));
    const res = await readOrFollow(
      h.store,
      h.connection(),
      job.id,
      {},
      (r) => seen.push(r.status ?? r.line!),
      {
        follow: true,
        localHost: h.runner.host,
        blockMs: 200,
      },
    );
    expect(res.terminal?.status).toBe('crashed');
    expect(res.message).toMatch(/^job crashed: its runner is gone/);
    expect(seen).toEqual(['queued', 'crashed']);
    await exited;
  });

  it('--follow on a job on another host ends once its runner heartbeat has expired', async () => {
    const job = await h.queued();
    await h.store.transition(job.id, {
      from: ['queued'],
      to: 'running',
      fields: {
        host: 'other-host',
        runner_id: 'replica:other-host:1:x',
        runner_pid: 1,
        started_at: new Date().toISOString(),
      },
    });
    const res = await readOrFollow(h.store, h.connection(), job.id, {}, () => undefined, {
      follow: true,
      localHost: h.runner.host,
      blockMs: 200,
    });
    expect(res.terminal?.status).toBe('crashed');
    expect((await h.store.get(job.id))!.status).toBe('crashed');
  });

  it('the log writer batches and a record arriving out of order is refused by Redis', async () => {
    const job = await h.run({ argv: ['sh', '-c', 'seq 1 500'] });
    const log = await h.log(job.id);
    expect(log).toHaveLength(503);
    expect(log.map((r) => r.seq)).toEqual(Array.from({ length: 503 }, (_, i) => i + 1));
    await expect(h.redis.xadd(h.store.keys.log(job.id), '5-0', 'x', 'y')).rejects.toThrow(/equal or smaller/);
    await waitFor(() => true, 'noop');
  });
});
