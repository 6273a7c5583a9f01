import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { EnvelopeCodec, Keyspace } from '@coordbus/envelope';
import {
  cleanupNamespace,
  REPO_ROOT,
  ServiceProcess,
  startService,
  testKeyspace,
  testRedisUrl,
  waitFor,
} from '@coordbus/testing';
import { type JobMeta, JobStore } from '@coordbus/jobs';
import { COORDBUS, run } from './coord-helpers';

/**
 * The shipped examples/.coordbus/hooks.yml, fired as Claude Code fires it: the hook JSON on the
 * stdin of the real `coordbus hooks run` (and of the agent hook script that calls it), background
 * jobs on a built job-coordinator replica. Each job must see the event: on stdin and as
 * COORDBUS_* variables. Run `npm run build` first.
 */
jest.setTimeout(180_000);

describe('hook jobs get the agent hook event (examples/.coordbus/hooks.yml)', () => {
  let redis: Redis;
  let keyspace: Keyspace;
  let store: JobStore;
  let dir: string;
  let project: string;
  let replica: ServiceProcess;

  const env = () => ({ REDIS_URL: testRedisUrl(), COORDBUS_NAMESPACE: keyspace.namespace });
  const hooksRun = async (hook: string, event: object | string) => {
    const r = await run(COORDBUS, ['hooks', 'run', hook, '--json'], {
      cwd: project,
      env: env(),
      input: typeof event === 'string' ? event : JSON.stringify(event),
      timeoutMs: 60_000,
    });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    return r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as JobMeta);
  };
  const waitJob = (id: string, what: string) =>
    waitFor<JobMeta>(
      async () => {
        const j = await store.get(id);
        return (j && ['succeeded', 'failed', 'crashed'].includes(j.status) ? j : undefined) as JobMeta;
      },
      what,
      60_000,
    );
  const stdoutOf = async (id: string) => {
    const r = await run(COORDBUS, ['jobs', 'logs', id, '--stdout'], { env: env() });
    expect(r.code).toBe(0);
    return r.stdout;
  };

  beforeAll(async () => {
    redis = new Redis(testRedisUrl());
    keyspace = testKeyspace('hook-jobs-e2e');
    store = new JobStore(redis, keyspace, new EnvelopeCodec());
    dir = mkdtempSync(join(tmpdir(), 'coordbus-hook-jobs-'));
    project = join(dir, 'project');
    mkdirSync(join(project, '.coordbus'), { recursive: true });
    copyFileSync(
      join(REPO_ROOT, 'examples', '.coordbus', 'hooks.yml'),
      join(project, '.coordbus', 'hooks.yml'),
    );
    // The project's own lint and test scripts, as the example calls them.
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({
        name: 'hook-jobs-project',
        private: true,
        scripts: {
          'lint:file': 'echo linted',
          test: 'echo "tests for $COORDBUS_SESSION_ID after $COORDBUS_HOOK_EVENT"',
        },
      }),
    );
    replica = await startService(
      'job-coordinator',
      { ...env(), JOBS_CONCURRENCY: '2', JOBS_PRUNE_INTERVAL: '0', JOBS_SHUTDOWN_GRACE: '500ms' },
      60_000,
    );
    await waitFor(
      () => replica.lines.some((l) => l.includes('job worker started')),
      'the job worker',
      30_000,
    );
  });
  afterAll(async () => {
    await replica?.stop('SIGKILL');
    await cleanupNamespace(redis, keyspace);
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lint-on-edit: an Edit lints the edited file on a replica; a Bash call is skipped by the tool condition', async () => {
    const file = join(project, 'src', 'auth.ts');
    const edit = {
      session_id: 'sess-edit',
      transcript_path: join(dir, 'sess-edit.jsonl'),
      cwd: project,
      hook_event_name: 'PostToolUse',
      tool_name: 'Edit',
      tool_input: { file_path: file, old_string: 'a', new_string: 'b' },
      tool_response: { filePath: file, success: true },
    };
    const [queued] = await hooksRun('PostToolUse', edit);
    expect(queued).toMatchObject({ name: 'lint-on-edit', status: 'queued', background: true });
    const done = await waitJob(queued.id, 'lint-on-edit to finish');
    expect(done).toMatchObject({ status: 'succeeded', exit_code: 0 });
    expect(await stdoutOf(done.id)).toBe(`linted ${file}\n`);
    // Stored with the job like its other inputs: the event, and its fields in the environment.
    expect(JSON.parse(done.stdin!)).toEqual(edit);
    expect(done.env).toMatchObject({
      COORDBUS_HOOK_EVENT: 'PostToolUse',
      COORDBUS_SESSION_ID: 'sess-edit',
      COORDBUS_TOOL_NAME: 'Edit',
      COORDBUS_FILE_PATH: file,
      COORDBUS_CWD: project,
    });

    const [bash] = await hooksRun('PostToolUse', {
      ...edit,
      tool_name: 'Bash',
      tool_input: { command: 'ls' },
    });
    expect(bash).toMatchObject({ name: 'lint-on-edit', status: 'skipped' });
    expect(bash.reason).toMatch(/^only: /);
  });

  it('test-on-stop: the agent hook script passes the Stop event on to the job, which runs the tests', async () => {
    const stop = { session_id: 'sess-stop', hook_event_name: 'Stop', cwd: project, stop_hook_active: false };
    const script = join(REPO_ROOT, 'apps', 'cli', 'src', 'hooks', 'coordbus-hook.sh');
    const r = await run('/bin/sh', [script, 'Stop'], {
      cwd: project,
      input: JSON.stringify(stop),
      env: {
        ...env(),
        COORDBUS_HOOK_COORDBUS: COORDBUS,
        COORDBUS_HOOK_COORD: join(dir, 'no-coord'),
        COORD_SESSION_ID: '',
        CLAUDE_SESSION_ID: '',
      },
    });
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
    // The hook returns at once; `hooks run` goes on detached.
    const job = await waitFor<JobMeta>(
      async () => (await store.list()).find((j) => j.name === 'test-on-stop') as JobMeta,
      'the test-on-stop job to be submitted',
      60_000,
    );
    const done = await waitJob(job.id, 'test-on-stop to finish');
    expect(done).toMatchObject({ status: 'succeeded', hook: 'Stop', tags: ['test', 'session:sess-stop'] });
    expect(await stdoutOf(done.id)).toContain('tests for sess-stop after Stop\n');
    expect(JSON.parse(done.stdin!)).toEqual(stop);
  });

  it('notify: the job reads the whole event on stdin (cat > file); a secret in it is scrubbed from what is stored', async () => {
    const note = {
      session_id: 'sess-note',
      cwd: project,
      hook_event_name: 'Notification',
      message: 'Claude needs your permission to use Bash: deploy --token abcd1234efgh5678',
    };
    const raw = JSON.stringify(note);
    const [row] = await hooksRun('Notification', raw);
    expect(row).toMatchObject({ name: 'notify', status: 'succeeded', background: false });
    // What the job got: the event as Claude Code wrote it, byte for byte.
    expect(readFileSync(join(project, '.coordbus', 'notifications', 'last.json'), 'utf8')).toBe(raw);
    expect(await stdoutOf(row.id)).toBe(
      'sess-note: Claude needs your permission to use Bash: deploy --token [scrubbed]\n',
    );
    const stored = (await store.get(row.id))!;
    expect(stored.stdin).toBe(raw.replace('abcd1234efgh5678', '[scrubbed]'));
    expect(stored.env.COORDBUS_MESSAGE).not.toContain('abcd1234efgh5678');
    expect(JSON.stringify(await redis.hgetall(store.keys.job(row.id)))).not.toContain('abcd1234efgh5678');
  });
});
