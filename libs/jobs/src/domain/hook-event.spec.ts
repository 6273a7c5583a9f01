import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hookEventInput } from './hook-event';
import { parseHooksFile } from './hooks-file';
import { newJob } from '../queue/submit';
import { unpackSecrets } from './env-scrub';

describe('hookEventInput', () => {
  const edit = {
    session_id: 'abc-1',
    transcript_path: '/home/u/.claude/projects/x/abc-1.jsonl',
    cwd: '/work/p',
    hook_event_name: 'PostToolUse',
    tool_name: 'Edit',
    tool_input: { file_path: '/work/p/src/a.ts', old_string: 'a', new_string: 'b' },
    tool_response: { success: true },
  };

  it('passes the event unchanged on stdin and its main fields as variables', () => {
    const raw = JSON.stringify(edit);
    expect(hookEventInput(raw, 'PostToolUse')).toEqual({
      stdin: raw,
      env: {
        COORDBUS_HOOK_EVENT: 'PostToolUse',
        COORDBUS_SESSION_ID: 'abc-1',
        COORDBUS_TOOL_NAME: 'Edit',
        COORDBUS_FILE_PATH: '/work/p/src/a.ts',
        COORDBUS_CWD: '/work/p',
        COORDBUS_TRANSCRIPT_PATH: edit.transcript_path,
      },
    });
  });

  it('fires with only the hook name for no input, and passes non-JSON text as is', () => {
    expect(hookEventInput(null, 'Stop')).toEqual({ stdin: null, env: { COORDBUS_HOOK_EVENT: 'Stop' } });
    expect(hookEventInput('  \n', 'Stop').stdin).toBeNull();
    expect(hookEventInput('not json', 'Stop')).toEqual({
      stdin: 'not json',
      env: { COORDBUS_HOOK_EVENT: 'Stop' },
    });
  });

  it('scrubs secrets from the variables (they are stored), not from stdin', () => {
    const raw = JSON.stringify({
      session_id: 's',
      hook_event_name: 'Notification',
      message: 'run --token abcd1234efgh',
    });
    const got = hookEventInput(raw, 'Notification');
    expect(got.env.COORDBUS_MESSAGE).toBe('run --token [scrubbed]');
    expect(got.stdin).toBe(raw);
  });

  it('bounds the event: long strings cut, then only the main fields, always valid JSON', () => {
    const big = { ...edit, tool_response: { content: 'x'.repeat(10_000) } };
    const cut = JSON.parse(hookEventInput(JSON.stringify(big), 'PostToolUse', 8_000).stdin!);
    expect(cut.coordbus_truncated).toBe(true);
    expect(cut.tool_input).toEqual(edit.tool_input);
    expect(cut.tool_response.content).toMatch(/^x{4096}…\[5904 more characters cut\]$/);
    const many = { ...edit, tool_response: Array.from({ length: 100 }, () => 'y'.repeat(5_000)) };
    const main = JSON.parse(hookEventInput(JSON.stringify(many), 'PostToolUse', 8_000).stdin!);
    expect(main).toEqual({
      coordbus_truncated: true,
      session_id: 'abc-1',
      transcript_path: edit.transcript_path,
      cwd: '/work/p',
      hook_event_name: 'PostToolUse',
      tool_name: 'Edit',
    });
  });

  it('a job built from it stores the scrubbed event; the real one travels with its secrets', () => {
    const raw = JSON.stringify({
      session_id: 's',
      hook_event_name: 'Stop',
      note: 'curl -H "Authorization: Bearer abcdefgh12345"',
    });
    const event = hookEventInput(raw, 'Stop');
    const { meta, secrets } = newJob(
      {
        name: 'j',
        hook: 'Stop',
        worktree: null,
        tags: [],
        argv: ['true'],
        shell: false,
        cwd: null,
        env: event.env,
        timeout_ms: null,
        sample_every: 1,
        keep_last: null,
        retention_ms: null,
        background: true,
        stdin: event.stdin,
      },
      'inv',
    );
    expect(meta.stdin).not.toContain('abcdefgh12345');
    expect(meta.stdin).toContain('Bearer [scrubbed]');
    expect(unpackSecrets(secrets)).toEqual({ env: {}, argv: null, stdin: raw });
    expect(meta.env).toEqual({ COORDBUS_HOOK_EVENT: 'Stop', COORDBUS_SESSION_ID: 's' });
  });
});

describe('examples/.coordbus/hooks.yml', () => {
  it('is a valid hooks file with the three documented jobs', () => {
    const file = join(__dirname, '..', '..', '..', '..', 'examples', '.coordbus', 'hooks.yml');
    const { hooks } = parseHooksFile(readFileSync(file, 'utf8'), file);
    expect(
      Object.fromEntries(Object.entries(hooks).map(([h, jobs]) => [h, jobs.map((j) => j.name)])),
    ).toEqual({
      PostToolUse: ['lint-on-edit'],
      Stop: ['test-on-stop'],
      Notification: ['notify'],
    });
  });
});
