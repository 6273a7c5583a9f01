import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newUlid } from '@coordbus/envelope';
import { JobExecutor } from '../src/exec/job-executor';
import { WorkspaceRegistry } from '../src/exec/workspace';
import { newJob } from '../src/queue/submit';
import { Harness } from './harness';

/**
 * A job-coordinator serves only the worktrees it can see (JOBS_WORKSPACE_ROOTS, advertised by each
 * live replica): a job elsewhere is refused when submitted, recorded `failed` with the reason and
 * never queued; a runner that still receives one fails it with that reason, not a missing-dir error.
 */
describe('workspace roots', () => {
  let h: Harness;
  let registry: WorkspaceRegistry;
  let ws: string;
  beforeAll(async () => {
    h = await new Harness('jobs-workspace').start();
    registry = new WorkspaceRegistry(h.redis, h.store.keys);
    ws = mkdtempSync(join(tmpdir(), 'coordbus-ws-'));
  });
  afterAll(async () => {
    rmSync(ws, { recursive: true, force: true });
    await h.close();
  });
  afterEach(() => h.redis.del(h.store.keys.workspaces));

  const background = (cwd: string) => newJob(h.request({ cwd, background: true }), newUlid());
  const queuedIds = async () => (await h.queue().getJobs(['waiting', 'delayed', 'active'])).map((j) => j.id);

  it('refuses at once a job whose cwd no live replica serves: failed with the reason, never queued', async () => {
    await registry.advertise('replica:a', [ws], 15_000);
    await registry.advertise('replica:b', ['/srv/other'], 15_000);
    const { meta, secrets } = background('/home/nobody/wt');
    const submitted = await h.submitter.submitBackground(meta, { ...secrets, GH_TOKEN: 'x' });
    expect(submitted.status).toBe('failed');
    expect(submitted.reason).toBe(
      `no job-coordinator can see /home/nobody/wt: the running replicas serve /srv/other, ${ws} ` +
        '(in Docker, set COORDBUS_WORKSPACE to a directory holding your worktrees)',
    );
    const stored = await h.store.get(meta.id);
    expect({ status: stored?.status, reason: stored?.reason, finished: !!stored?.finished_at }).toEqual({
      status: 'failed',
      reason: submitted.reason,
      finished: true,
    });
    expect(await h.statusRecords(meta.id)).toEqual(['failed']);
    expect(await queuedIds()).not.toContain(meta.id);
    expect(await h.redis.exists(h.store.keys.secrets(meta.id))).toBe(0);
  });

  it('queues a job under a served root, and any job while no replica is live (an outage is waited out)', async () => {
    await registry.advertise('replica:a', [ws], 15_000);
    const served = background(join(ws, 'wt-1'));
    expect((await h.submitter.submitBackground(served.meta, served.secrets)).status).toBe('queued');
    await h.redis.del(h.store.keys.workspaces);
    await registry.advertise('replica:gone', [ws], -1);
    const anywhere = background('/home/nobody/wt');
    expect((await h.submitter.submitBackground(anywhere.meta, anywhere.secrets)).status).toBe('queued');
    // The expired advert was dropped on read.
    expect(await h.redis.hkeys(h.store.keys.workspaces)).toEqual([]);
    expect(await queuedIds()).toEqual(expect.arrayContaining([served.meta.id, anywhere.meta.id]));
  });

  it('a runner given a job outside its roots fails it with that reason without starting it', async () => {
    const executor = new JobExecutor(h.redis, h.store, h.runner, h.bus, {
      killGraceMs: 500,
      logMaxLen: 1000,
      workspaceRoots: [ws],
    });
    const outside = await h.queued({ cwd: tmpdir(), argv: ['sh', '-c', 'echo ran > /dev/stderr'] });
    const final = await executor.execute(outside.id);
    expect({ status: final?.status, reason: final?.reason, pgid: final?.pgid }).toEqual({
      status: 'failed',
      reason: `could not start: ${tmpdir()} is outside the workspace this job-coordinator serves (${ws})`,
      pgid: null,
    });
    const inside = await h.queued({ cwd: ws, argv: ['true'] });
    expect((await executor.execute(inside.id))?.status).toBe('succeeded');
  });
});
