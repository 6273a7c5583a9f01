import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderHookEnv, renderHookScript } from './hook-script';

describe('renderHookScript', () => {
  it('puts the binaries in place of the placeholders, quoted for sh, and stays valid sh', () => {
    const coord = "/opt/it's here/bin/coord";
    const script = renderHookScript({ coord, coordbus: '/usr/bin/coordbus', env: '/h/coordbus-hook.env' });
    expect(script).not.toContain('@COORD');
    expect(script).toContain(`COORD=\${COORDBUS_HOOK_COORD:-'/opt/it'\\''s here/bin/coord'}`);
    expect(script).toContain(`COORDBUS=\${COORDBUS_HOOK_COORDBUS:-'/usr/bin/coordbus'}`);
    expect(script).toContain(`ENVFILE=\${COORDBUS_HOOK_ENV:-'/h/coordbus-hook.env'}`);
    expect(script).toContain("ACTIVITY_LUA='#!lua\n--[[");
    const file = join(mkdtempSync(join(tmpdir(), 'hook-')), 'coordbus-hook.sh');
    writeFileSync(file, script);
    execFileSync('sh', ['-n', file]);
    // The installed path is what the script runs: `sh -c 'echo "$COORD"'` after its assignments.
    const head = script.split('\n').filter((l) => /^COORD=/.test(l))[0];
    expect(execFileSync('sh', ['-c', `${head}; printf %s "$COORD"`], { env: {} }).toString()).toBe(coord);
  });

  it('refuses a template with a placeholder it does not know', () => {
    expect(() => renderHookScript({ coord: 'a', coordbus: 'b', env: 'c' }, "X='@NOPE@'")).toThrow(
      /unknown placeholder '@NOPE@'/,
    );
  });
});

describe('renderHookEnv', () => {
  it('carries only the deployment variables that are set, quoted for sh and exported', () => {
    const text = renderHookEnv({
      REDIS_URL: "redis://:p'w@h:1",
      COORDBUS_NAMESPACE: 'ns1',
      HOME: '/x',
      COORD_SESSION_TTL: '',
    });
    const file = join(mkdtempSync(join(tmpdir(), 'hook-env-')), 'coordbus-hook.env');
    writeFileSync(file, text);
    const out = execFileSync(
      'sh',
      ['-c', `. "$1"; printf '%s|%s|%s' "$REDIS_URL" "$COORDBUS_NAMESPACE" "$HOME"`, 'sh', file],
      {
        env: { HOME: '/home' },
      },
    ).toString();
    expect(out).toBe("redis://:p'w@h:1|ns1|/home");
    expect(text).toContain('export REDIS_URL COORDBUS_NAMESPACE\n');
    expect(text).not.toContain('COORD_SESSION_TTL');
  });
});
