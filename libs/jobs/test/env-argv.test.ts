import { newUlid } from '@coordbus/envelope';
import { publicRow } from '../src/store/job-store';
import { newJob } from '../src/queue/submit';
import { Harness } from './harness';

const SECRET = 'hunter2-argv-secret-value';

/** A job starts from a minimal environment, and a secret on its command line is never stored. */
describe('job environment and argv', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await new Harness('jobs-envargv').start();
  });
  afterAll(() => h.close());

  const stdout = async (id: string) =>
    (await h.log(id)).filter((r) => r.kind === 'stdout').map((r) => r.line!);
  const stored = async (id: string) =>
    JSON.stringify(await h.store.get(id)) +
    JSON.stringify(await h.log(id)) +
    JSON.stringify(await h.redis.xrange(h.keyspace.jobEvents, '-', '+'));

  it("gets PATH, HOME, its declared variables and coordbus's, never the runner's own environment", async () => {
    // The runner (this test process) has REDIS_URL and more; add a token of its own too.
    process.env.RUNNER_DEPLOY_TOKEN = 'runner-own-token';
    try {
      const job = await h.run({ argv: ['env'], env: { MINE: 'declared', MY_TOKEN: 'declared-secret' } });
      const vars = new Map((await stdout(job.id)).map((l) => [l.split('=')[0], l.slice(l.indexOf('=') + 1)]));
      expect([...vars.keys()].sort()).toEqual(
        [
          'COORDBUS_HOOK',
          'COORDBUS_INVOCATION_ID',
          'COORDBUS_JOB_ID',
          'COORDBUS_JOB_NAME',
          'HOME',
          'MINE',
          'MY_TOKEN',
          'PATH',
        ].sort(),
      );
      expect(vars.get('MINE')).toBe('declared');
      expect(vars.get('MY_TOKEN')).toBe('[scrubbed]'); // it got it; the log does not keep it
      expect(await stored(job.id)).not.toContain('runner-own-token');
    } finally {
      delete process.env.RUNNER_DEPLOY_TOKEN;
    }
  });

  it.each([
    ['a flag and its value', ['sh', '-c', 'echo "$2"', 'sh', '--token', SECRET]],
    ['--flag=value', ['sh', '-c', 'echo "${1#*=}"', 'sh', `--db-password=${SECRET}`]],
    ['NAME_TOKEN=value', ['sh', '-c', 'echo "${1#*=}"', 'sh', `GH_TOKEN=${SECRET}`]],
    ['a URL with a password', ['sh', '-c', 'echo "$1"', 'sh', `redis://user:${SECRET}@redis.internal:6379`]],
  ])(
    '%s: the process gets it, jobs ls / the log / events never show it (foreground)',
    async (_what, argv) => {
      const job = await h.run({ argv });
      expect(job.status).toBe('succeeded');
      expect(job.argv.some((a) => a.includes('[scrubbed]'))).toBe(true);
      expect(JSON.stringify(publicRow(job))).not.toContain(SECRET);
      expect((await stdout(job.id)).join('\n')).toContain('[scrubbed]');
      expect(await stored(job.id)).not.toContain(SECRET);
    },
  );

  it('a shell command string is scrubbed the same way; a background job gets its real argv from the TTL key', async () => {
    const cmd = `echo "Authorization: Bearer ${SECRET}" --api-key ${SECRET}x && test -n "${SECRET}"`;
    const { meta, secrets } = newJob(h.request({ argv: [cmd], shell: true, background: true }), newUlid());
    expect(meta.argv[0]).toBe(
      'echo "Authorization: Bearer [scrubbed]" --api-key [scrubbed] && test -n "[scrubbed]"',
    );
    await h.submitter.submitBackground(meta, secrets);
    expect(JSON.stringify(await h.store.get(meta.id))).not.toContain(SECRET);
    const final = await h.executor.execute(meta.id);
    expect(final!.status).toBe('succeeded'); // test -n ran on the real value
    expect(await stdout(meta.id)).toEqual(['Authorization: Bearer [scrubbed] --api-key [scrubbed]']);
    expect(await stored(meta.id)).not.toContain(SECRET);
    await h.queue().obliterate({ force: true });
  });

  it('a background job whose real argv expired while queued fails instead of running [scrubbed]', async () => {
    const { meta, secrets } = newJob(
      h.request({ argv: ['echo', '--token', SECRET], background: true }),
      newUlid(),
    );
    await h.submitter.submitBackground(meta, secrets);
    await h.redis.del(h.store.keys.secrets(meta.id));
    const final = await h.executor.execute(meta.id);
    expect(final).toMatchObject({ status: 'failed' });
    expect(final!.reason).toContain('its command line');
    expect(await stdout(meta.id)).toEqual([]);
    await h.queue().obliterate({ force: true });
  });
});
