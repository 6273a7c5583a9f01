import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { Keyspace } from '@coordbus/envelope';
import { cleanupNamespace, freePort, testKeyspace, testRedisUrl, waitFor } from '@coordbus/testing';
import { COORD, COORDBUS, run } from './coord-helpers';

jest.setTimeout(60_000);

/** `coordbus hooks install|uninstall|status` on real settings files, and the installed hook script run as Claude Code runs it. */
describe('coord hooks', () => {
  let dir: string;
  let settings: string;
  const hooks = (args: string[]) => run(COORDBUS, ['hooks', ...args, '--settings', settings]);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'coord-hooks-'));
    settings = join(dir, '.claude', 'settings.json');
    mkdirSync(join(dir, '.claude'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const read = () => JSON.parse(readFileSync(settings, 'utf8'));
  const ourCommand = (event: string) => `${join(dir, '.claude', 'hooks', 'coordbus-hook.sh')} ${event}`;

  it('installs into an empty file, and a second install says already installed without writing', async () => {
    writeFileSync(settings, '');
    const first = await hooks(['install']);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('coord hooks: installed');
    const s = read();
    expect(s.hooks.PostToolUse).toEqual([
      { matcher: '*', hooks: [{ type: 'command', command: ourCommand('PostToolUse'), timeout: 10 }] },
    ]);
    expect(s.hooks.SessionStart[0].hooks[0].command).toBe(ourCommand('SessionStart'));
    expect(statSync(join(dir, '.claude', 'hooks', 'coordbus-hook.sh')).mode & 0o111).not.toBe(0);
    const mtime = statSync(settings).mtimeMs;

    const second = await hooks(['install']);
    expect(second.code).toBe(0);
    expect(second.stdout.trim()).toBe('coord hooks: already installed');
    expect(statSync(settings).mtimeMs).toBe(mtime);
    expect((await hooks(['status'])).code).toBe(0);
  });

  it('keeps every other setting and hook, backs the old file up, and uninstall removes only ours', async () => {
    const original = {
      model: 'opus',
      permissions: { allow: ['Bash(ls)'] },
      hooks: {
        PostToolUse: [
          { matcher: 'Edit', hooks: [{ type: 'command', command: 'prettier --write', timeout: 30 }] },
        ],
        Stop: [{ hooks: [{ type: 'prompt', prompt: 'check the tests' }] }],
        Notification: [{ hooks: [{ type: 'command', command: 'notify-send hi' }] }],
      },
    };
    const text = `${JSON.stringify(original, null, 4)}\n`;
    writeFileSync(settings, text);
    expect((await hooks(['install'])).code).toBe(0);
    expect(readFileSync(`${settings}.bak`, 'utf8')).toBe(text);
    const s = read();
    expect(s.model).toBe('opus');
    expect(s.permissions).toEqual(original.permissions);
    // Every event is wired now: the user's Notification hook stays first, ours comes after it.
    expect(s.hooks.Notification[0]).toEqual(original.hooks.Notification[0]);
    expect(s.hooks.Notification[1].hooks[0].command).toBe(ourCommand('Notification'));
    expect(s.hooks.UserPromptSubmit[0].hooks[0].command).toBe(ourCommand('UserPromptSubmit'));
    expect(s.hooks.PostToolUse[0]).toEqual(original.hooks.PostToolUse[0]);
    expect(s.hooks.PostToolUse[1].hooks[0].command).toBe(ourCommand('PostToolUse'));
    expect(s.hooks.Stop[0]).toEqual(original.hooks.Stop[0]);
    expect(s.hooks.Stop[1].hooks[0].command).toBe(ourCommand('Stop'));

    const un = await hooks(['uninstall']);
    expect(un.code).toBe(0);
    expect(read()).toEqual(original);
    expect(existsSync(join(dir, '.claude', 'hooks', 'coordbus-hook.sh'))).toBe(false);
    expect(existsSync(join(dir, '.claude', 'hooks', 'coordbus-hook.env'))).toBe(false);
    expect((await hooks(['status'])).code).toBe(4);
    expect((await hooks(['uninstall'])).stdout.trim()).toBe('coord hooks: not installed');
  });

  it('reports a malformed settings file clearly and leaves it untouched', async () => {
    const bad = '{ "model": "opus", hooks: [ }';
    writeFileSync(settings, bad);
    const r = await hooks(['install']);
    expect(r.code).toBe(7);
    expect(r.stderr).toContain(`${settings} is not valid JSON`);
    expect(r.stderr).toContain('left it untouched');
    expect(readFileSync(settings, 'utf8')).toBe(bad);
    expect(existsSync(`${settings}.bak`)).toBe(false);
    writeFileSync(settings, '{"hooks": {"PostToolUse": {"not": "an array"}}}');
    const shape = await hooks(['install']);
    expect(shape.code).toBe(7);
    expect(shape.stderr).toContain('hooks.PostToolUse');
  });

  describe('the hook script', () => {
    let redis: Redis;
    let ks: Keyspace;
    let project: string;
    let script: string;
    let state: string;

    beforeAll(() => {
      redis = new Redis(testRedisUrl());
    });
    afterAll(() => redis.disconnect());
    beforeEach(async () => {
      ks = testKeyspace('hook');
      expect((await hooks(['install'])).code).toBe(0);
      script = join(dir, '.claude', 'hooks', 'coordbus-hook.sh');
      project = join(dir, 'project');
      state = join(dir, 'state');
      mkdirSync(project);
    });
    afterEach(async () => {
      await cleanupNamespace(redis, ks);
    });

    const hook = (event: string, input: object, extra: NodeJS.ProcessEnv = {}) =>
      run('/bin/sh', ['-c', `${script} ${event}`], {
        cwd: project,
        input: JSON.stringify(input),
        env: {
          REDIS_URL: testRedisUrl(),
          COORDBUS_NAMESPACE: ks.namespace,
          COORDBUS_HOOK_STATE: state,
          COORD_SESSION_ID: '',
          CLAUDE_SESSION_ID: '',
          ...extra,
        },
      });

    /** A stand-in binary that appends its argv and stdin to a log. */
    function recorder(name: string): { bin: string; log: () => string[] } {
      const bin = join(dir, name);
      const log = join(dir, `${name}.log`);
      writeFileSync(bin, `#!/bin/sh\nprintf '%s|%s|%s\\n' "$COORD_SESSION_ID" "$*" "$(cat)" >> '${log}'\n`);
      chmodSync(bin, 0o755);
      return { bin, log: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []) };
    }

    it('SessionStart registers the stdin session with the first line of .claude-task; PostToolUse heartbeats', async () => {
      writeFileSync(join(project, '.claude-task'), 'Fix the flaky parser\nmore text\n');
      const r = await hook('SessionStart', {
        session_id: 'claude-42',
        hook_event_name: 'SessionStart',
        source: 'startup',
      });
      expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
      const key = ks.coordKey('session:claude-42');
      await waitFor(
        async () => (await redis.hget(key, 'task')) === 'Fix the flaky parser',
        'the session to register',
      );
      const registered = await redis.hget(key, 'last_heartbeat_ms');

      const tool = await hook('PostToolUse', {
        session_id: 'claude-42',
        hook_event_name: 'PostToolUse',
        tool_name: 'Bash',
        tool_input: { command: 'ls' },
      });
      expect(tool).toMatchObject({ code: 0, stdout: '', stderr: '' });
      await waitFor(
        async () => (await redis.hget(key, 'last_heartbeat_ms')) !== registered,
        'the heartbeat to land',
      );

      const end = await hook('SessionEnd', { session_id: 'claude-42', hook_event_name: 'SessionEnd' });
      expect(end.code).toBe(0);
      await waitFor(async () => (await redis.exists(key)) === 0, 'SessionEnd to deregister');
    });

    it('throttles heartbeats per session without starting anything inside the window', async () => {
      const coord = recorder('coord');
      const input = {
        session_id: 'busy-1',
        hook_event_name: 'PostToolUse',
        tool_name: 'Read',
        tool_response: 'x'.repeat(200_000),
      };
      for (let i = 0; i < 5; i++) {
        const r = await hook('PostToolUse', input, { COORDBUS_HOOK_COORD: coord.bin });
        expect(r.code).toBe(0);
      }
      await hook('PostToolUse', { ...input, session_id: 'busy-2' }, { COORDBUS_HOOK_COORD: coord.bin });
      await waitFor(() => coord.log().length >= 2, 'the heartbeats of both sessions');
      await new Promise((r) => setTimeout(r, 300)); // would-be extra background starts have had time to log
      expect(coord.log().sort()).toEqual(['busy-1|heartbeat --ensure|', 'busy-2|heartbeat --ensure|']);
      // The stamp holds the clock second the window ends (no GNU `touch -d`); once that has
      // passed, the next call fires again.
      const stamp = join(state, 'busy-1');
      expect(readFileSync(stamp, 'utf8')).toMatch(/^\d+\n$/);
      writeFileSync(stamp, '0\n');
      await hook('PostToolUse', input, { COORDBUS_HOOK_COORD: coord.bin });
      await waitFor(() => coord.log().length === 3, 'a heartbeat after the window');
    });

    it('runs `coordbus hooks run <Event>` with the hook JSON only for events named in .coordbus/hooks.yml', async () => {
      const coordbus = recorder('coordbus');
      const noCoord = join(dir, 'no-such-coord');
      mkdirSync(join(project, '.coordbus'));
      writeFileSync(
        join(project, '.coordbus', 'hooks.yml'),
        // Both forms the hooks file accepts: a top-level hook, and one nested under `hooks:`.
        'Stop:\n  - run: npm test\n# SessionStart: not a key\nhooks:\n  SessionEnd:\n    - run: make clean\n',
      );
      const input = { session_id: 'jobs-1', hook_event_name: 'Stop', cwd: project };
      const env = { COORDBUS_HOOK_COORDBUS: coordbus.bin, COORDBUS_HOOK_COORD: noCoord };
      expect((await hook('Stop', input, env)).code).toBe(0);
      expect((await hook('SessionStart', { ...input, hook_event_name: 'SessionStart' }, env)).code).toBe(0);
      const end = { ...input, hook_event_name: 'SessionEnd' };
      expect((await hook('SessionEnd', end, env)).code).toBe(0);
      await waitFor(() => coordbus.log().length >= 2, 'hooks run to start');
      await new Promise((r) => setTimeout(r, 300));
      expect(coordbus.log().sort()).toEqual(
        [
          `jobs-1|hooks run Stop|${JSON.stringify(input)}`,
          `jobs-1|hooks run SessionEnd|${JSON.stringify(end)}`,
        ].sort(),
      );
    });

    it('is a silent no-op exiting 0 without coord, with Redis down, or without a session id', async () => {
      const input = { session_id: 'quiet-1', hook_event_name: 'PostToolUse' };
      const missing = await hook('PostToolUse', input, { COORDBUS_HOOK_COORD: join(dir, 'absent') });
      expect(missing).toMatchObject({ code: 0, stdout: '', stderr: '' });
      const down = await hook('SessionStart', input, { REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
      expect(down).toMatchObject({ code: 0, stdout: '', stderr: '' });
      const noSid = await hook('PostToolUse', {
        hook_event_name: 'PostToolUse',
        session_id: null,
        transcript_path: '/x',
      });
      expect(noSid).toMatchObject({ code: 0, stdout: '', stderr: '' });
      expect(existsSync(join(state, 'transcript_path'))).toBe(false);
      expect(existsSync(COORD)).toBe(true);
    });
  });
});
