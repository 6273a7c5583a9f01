import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { Keyspace } from '@coordbus/envelope';
import { cleanupNamespace, testKeyspace, testRedisUrl, waitFor } from '@coordbus/testing';
import { COORD_COMMANDS } from '@coordbus/coord';
import { hookPaths, installHooks } from '../src/hooks/installer';

jest.setTimeout(60_000);

interface Activity {
  session_id: string;
  event: string;
  ts: string;
  tool?: string;
  path?: string;
  command?: string;
  exit_code?: number;
  message?: string;
}

/**
 * The installed hook run as Claude Code runs it, under dash and busybox sh, with an environment
 * that lacks the deployment (no REDIS_URL, no COORDBUS_NAMESPACE): what it records must still land
 * in the activity stream of the namespace it was installed for.
 */
describe.each([
  ['dash', ['dash']],
  ['busybox sh', ['busybox', 'sh']],
])('the hook under %s', (_name, shell) => {
  let redis: Redis;
  let ks: Keyspace;
  let dir: string;
  let script: string;
  let coordLog: string;

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
  });
  afterAll(() => redis.disconnect());
  beforeEach(() => {
    ks = testKeyspace('hookact');
    dir = mkdtempSync(join(tmpdir(), 'hook-activity-'));
    coordLog = join(dir, 'coord.log');
    const coord = join(dir, 'coord');
    writeFileSync(
      coord,
      `#!/bin/sh\nprintf '%s|%s|%s\\n' "$COORD_SESSION_ID" "$REDIS_URL" "$*" >> '${coordLog}'\n`,
    );
    chmodSync(coord, 0o755);
    const paths = hookPaths(join(dir, '.claude', 'settings.json'), { coord, coordbus: join(dir, 'none') });
    installHooks(paths, { REDIS_URL: testRedisUrl(), COORDBUS_NAMESPACE: ks.namespace, HOME: '/ignored' });
    script = paths.script;
    mkdirSync(join(dir, 'project'));
  });
  afterEach(async () => {
    await cleanupNamespace(redis, ks);
    rmSync(dir, { recursive: true, force: true });
  });

  const hook = (event: string, input: object | string, extra: NodeJS.ProcessEnv = {}) => {
    const r = spawnSync(shell[0], [...shell.slice(1), script, event], {
      cwd: join(dir, 'project'),
      input: typeof input === 'string' ? input : JSON.stringify(input),
      // Only what Claude Code is sure to give: no REDIS_URL, no namespace.
      env: { PATH: process.env.PATH, HOME: dir, ...extra },
      // Claude Code gives a hook 10 s by default; a hook still running after 30 s has stalled.
      timeout: 30_000,
    });
    expect({ code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() }).toEqual({
      code: 0,
      stdout: '',
      stderr: '',
    });
  };
  const entries = async (): Promise<Activity[]> =>
    (await redis.xrange(ks.activityStream, '-', '+')).map(([, f]) => {
      expect(f.slice(0, 4)).toEqual(['type', 'agent-activity', 'v', '1']);
      return JSON.parse(f[5]) as Activity;
    });
  const last = async (sid: string): Promise<Activity | undefined> => {
    const raw = await redis.hget(ks.activityLast, sid);
    return raw ? (JSON.parse(raw) as Activity) : undefined;
  };

  it('records tool calls (spooled until the heartbeat window) and sends rare events at once', async () => {
    const t0 = Date.now();
    hook('PreToolUse', {
      session_id: 's-1',
      hook_event_name: 'PreToolUse',
      tool_name: 'Edit',
      tool_input: { file_path: '/repo/src/a "b".ts', old_string: 'x' },
    });
    // A hot event alone only appends to the spool.
    await new Promise((r) => setTimeout(r, 200));
    expect(await redis.xlen(ks.activityStream)).toBe(0);

    hook('PostToolUse', {
      session_id: 's-1',
      hook_event_name: 'PostToolUse',
      tool_name: 'Bash',
      tool_input: { command: 'echo "hi" && ls', description: 'd' },
      tool_response: { exit_code: 2, stdout: 'x'.repeat(100_000) },
    });
    await waitFor(async () => (await redis.xlen(ks.activityStream)) === 2, 'the spool to be sent');
    const [pre, post] = await entries();
    expect(pre).toMatchObject({
      session_id: 's-1',
      event: 'PreToolUse',
      tool: 'Edit',
      path: '/repo/src/a "b".ts',
    });
    expect(post).toMatchObject({
      session_id: 's-1',
      event: 'PostToolUse',
      tool: 'Bash',
      command: 'echo "hi" && ls',
    });
    expect(post.exit_code).toBe(2);
    for (const e of [pre, post]) {
      expect(e.ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(Math.abs(Date.parse(e.ts) - t0)).toBeLessThan(10_000);
    }
    expect(Date.parse(pre.ts)).toBeLessThanOrEqual(Date.parse(post.ts));
    // The heartbeat started with the installed deployment, not Claude Code's environment.
    await waitFor(() => existsSync(coordLog), 'the heartbeat');
    expect(readFileSync(coordLog, 'utf8')).toBe(`s-1|${testRedisUrl()}|heartbeat --ensure\n`);

    // Inside the window: spooled, no heartbeat, nothing sent.
    hook('PostToolUse', {
      session_id: 's-1',
      hook_event_name: 'PostToolUse',
      tool_name: 'Read',
      tool_input: { file_path: '/r' },
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(await redis.xlen(ks.activityStream)).toBe(2);

    hook('Notification', {
      session_id: 's-1',
      hook_event_name: 'Notification',
      message: 'Claude needs your permission to use Bash',
    });
    await waitFor(async () => (await redis.xlen(ks.activityStream)) === 4, 'the Notification');
    expect((await entries()).map((e) => e.event)).toEqual([
      'PreToolUse',
      'PostToolUse',
      'PostToolUse',
      'Notification',
    ]);
    expect(await last('s-1')).toMatchObject({
      event: 'Notification',
      message: 'Claude needs your permission to use Bash',
    });
    expect(readFileSync(coordLog, 'utf8').split('\n').filter(Boolean)).toHaveLength(1);
  });

  it("takes a tool call's path and command from its input (escapes and all), never from its response", async () => {
    // Backslashes before quotes: the value is cut at the first quote that is not escaped.
    const command = 'printf "%s\\\\" "a\\"b" \\\\';
    hook('PreToolUse', {
      session_id: 's-5',
      hook_event_name: 'PreToolUse',
      tool_name: 'Bash',
      tool_input: { command, description: 'd "q"' },
    });
    // A tool whose input has no path: a "file_path" in what it returned is not the call's.
    hook('PostToolUse', {
      session_id: 's-5',
      hook_event_name: 'PostToolUse',
      tool_name: 'mcp__files__stat',
      tool_input: { name: 'x' },
      tool_response: { file_path: '/from/the/response', command: 'not this' },
    });
    await waitFor(async () => (await redis.xlen(ks.activityStream)) === 2, 'the spool to be sent');
    const [pre, post] = await entries();
    expect(pre).toMatchObject({ event: 'PreToolUse', tool: 'Bash', command });
    expect(post).toMatchObject({ event: 'PostToolUse', tool: 'mcp__files__stat' });
    expect(post.path).toBeUndefined();
    expect(post.command).toBeUndefined();
  });

  it('records an event whose JSON is megabytes of quoted text, cut, and its job gets all of it', async () => {
    const bytes = join(dir, 'job-bytes');
    const coordbus = join(dir, 'coordbus');
    writeFileSync(coordbus, `#!/bin/sh\nwc -c > '${bytes}'\n`);
    chmodSync(coordbus, 0o755);
    mkdirSync(join(dir, 'project', '.coordbus'));
    writeFileSync(join(dir, 'project', '.coordbus', 'hooks.yml'), 'PostToolUseFailure:\n  - run: true\n');
    // One escaped quote every 4 bytes: the hook before this took hours over it (a lookup copied
    // the rest of the value once per quote).
    const input = JSON.stringify({
      session_id: 's-6',
      hook_event_name: 'PostToolUseFailure',
      tool_name: 'Bash',
      tool_input: { command: 'make' },
      error: 'x"y '.repeat(300_000),
    });
    hook('PostToolUseFailure', input, { COORDBUS_HOOK_COORDBUS: coordbus });
    hook('Notification', {
      session_id: 's-6',
      hook_event_name: 'Notification',
      message: 'x'.repeat(200_000),
    });
    await waitFor(async () => (await redis.xlen(ks.activityStream)) === 2, 'both events');
    const [failure, note] = await entries();
    expect(failure).toMatchObject({ event: 'PostToolUseFailure', tool: 'Bash', command: 'make' });
    expect(failure.message).toBe('x"y '.repeat(256));
    expect(note.message).toBe('x'.repeat(1024));
    await waitFor(() => existsSync(bytes) && readFileSync(bytes, 'utf8').trim() !== '', 'the job');
    expect(Number(readFileSync(bytes, 'utf8').trim())).toBe(Buffer.byteLength(input));
  });

  it('starts `coordbus hooks run` only for events keyed in .coordbus/hooks.yml, read without grep', async () => {
    const runs = join(dir, 'runs.log');
    const coordbus = join(dir, 'coordbus');
    writeFileSync(coordbus, `#!/bin/sh\nprintf '%s|%s\\n' "$*" "$(cat)" >> '${runs}'\n`);
    chmodSync(coordbus, 0o755);
    mkdirSync(join(dir, 'project', '.coordbus'));
    // What the old `grep -E '^[[:space:]]*["']?Event["']?[[:space:]]*:'` matched, and what it did not:
    // comments, list items, longer names, a key on a last line without a newline, CRLF.
    writeFileSync(
      join(dir, 'project', '.coordbus', 'hooks.yml'),
      [
        'Stop:',
        '  - run: npm test',
        '# SessionStart: not a key',
        '- run: echo PreToolUse:',
        'hooks:',
        '  "PostToolUse" :',
        "\t'Notification':\r",
        'StopFailureX:',
        'PreCompact:',
      ].join('\n'),
    );
    const env = { COORDBUS_HOOK_COORDBUS: coordbus };
    const events = [
      'Stop',
      'SessionStart',
      'PreToolUse',
      'PostToolUse',
      'Notification',
      'StopFailure',
      'PreCompact',
    ];
    for (const event of events) hook(event, { session_id: 's-3', hook_event_name: event }, env);
    await waitFor(
      () => existsSync(runs) && readFileSync(runs, 'utf8').split('\n').filter(Boolean).length >= 4,
      'hooks run',
    );
    await new Promise((r) => setTimeout(r, 300)); // would-be extra background starts have had time to log
    const started = readFileSync(runs, 'utf8').split('\n').filter(Boolean).sort();
    expect(started).toEqual(
      ['Notification', 'PostToolUse', 'PreCompact', 'Stop']
        .map((event) => `hooks run ${event}|${JSON.stringify({ session_id: 's-3', hook_event_name: event })}`)
        .sort(),
    );
  });

  // Exit 2 from a PreToolUse hook blocks the tool call: a hand-damaged env file must not do that.
  it('still exits 0, silent, when its env file is damaged', () => {
    const envFile = join(dir, '.claude', 'hooks', 'coordbus-hook.env');
    expect(existsSync(envFile)).toBe(true);
    writeFileSync(envFile, 'REDIS_URL=redis://x\nif then fi (\n');
    const call = {
      session_id: 'damaged-env',
      hook_event_name: 'PreToolUse',
      tool_name: 'Read',
      tool_input: {},
    };
    hook('PreToolUse', call);
    hook('PostToolUse', { ...call, hook_event_name: 'PostToolUse' });
    hook('Stop', { session_id: 'damaged-env', hook_event_name: 'Stop' });
  });

  it('ignores input without a usable session id and never writes outside its state', async () => {
    hook('Stop', { session_id: '../../etc', hook_event_name: 'Stop' });
    hook('Stop', 'not json at all');
    hook('Bad;Event', { session_id: 's-2' });
    await new Promise((r) => setTimeout(r, 300));
    expect(await redis.xlen(ks.activityStream)).toBe(0);
    hook('Stop', { session_id: 's-2', hook_event_name: 'Stop' });
    await waitFor(async () => (await last('s-2'))?.event === 'Stop', 'Stop to land');
  });
});

describe('activity-2.lua', () => {
  let redis: Redis;
  const ks = testKeyspace('actlua');
  beforeAll(() => {
    redis = new Redis(testRedisUrl());
  });
  afterAll(async () => {
    await cleanupNamespace(redis, ks);
    redis.disconnect();
  });

  it('keeps the stream near MAXLEN, dates spooled lines back by their clock, and cuts long fields', async () => {
    const { lua } = COORD_COMMANDS.activity;
    const lines = Array.from(
      { length: 500 },
      (_, i) => `100.5\tPostToolUse\ts-${i % 3}\tBash\t\tls ${i}\t\t`,
    );
    const n = await redis.eval(lua, 2, ks.activityStream, ks.activityLast, '50', '110.5', lines.join('\n'));
    expect(n).toBe(500);
    const len = await redis.xlen(ks.activityStream);
    expect(len).toBeGreaterThanOrEqual(50);
    expect(len).toBeLessThan(500);
    const [, [, fields]] = [null, (await redis.xrevrange(ks.activityStream, '+', '-', 'COUNT', 1))[0]];
    const e = JSON.parse(fields[5]);
    expect(e).toMatchObject({ session_id: 's-1', event: 'PostToolUse', tool: 'Bash', command: 'ls 499' });
    expect(Date.now() - Date.parse(e.ts)).toBeGreaterThan(9_000); // 10 s before the send
    expect(await redis.hlen(ks.activityLast)).toBe(3);
    await redis.eval(
      lua,
      2,
      ks.activityStream,
      ks.activityLast,
      '50',
      '1',
      `1\tStop\ts-9\t\t\t${'é'.repeat(2000)}\t\t`,
    );
    const long = JSON.parse((await redis.hget(ks.activityLast, 's-9')) as string);
    expect(long.command).toBe('é'.repeat(512));
  });
});
