import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderHookScript } from './hook-script';

describe('renderHookScript', () => {
  it('puts the binaries in place of the placeholders, quoted for sh, and stays valid sh', () => {
    const coord = "/opt/it's here/bin/coord";
    const script = renderHookScript({ coord, coordbus: '/usr/bin/coordbus' });
    expect(script).not.toContain('@COORD');
    expect(script).toContain(`COORD=\${COORDBUS_HOOK_COORD:-'/opt/it'\\''s here/bin/coord'}`);
    expect(script).toContain(`COORDBUS=\${COORDBUS_HOOK_COORDBUS:-'/usr/bin/coordbus'}`);
    const file = join(mkdtempSync(join(tmpdir(), 'hook-')), 'coordbus-hook.sh');
    writeFileSync(file, script);
    execFileSync('sh', ['-n', file]);
    // The installed path is what the script runs: `sh -c 'echo "$COORD"'` after its assignments.
    const head = script.split('\n').filter((l) => /^COORD=/.test(l))[0];
    expect(execFileSync('sh', ['-c', `${head}; printf %s "$COORD"`], { env: {} }).toString()).toBe(coord);
  });

  it('refuses a template with a placeholder it does not know', () => {
    expect(() => renderHookScript({ coord: 'a', coordbus: 'b' }, "X='@NOPE@'")).toThrow(
      /unknown placeholder '@NOPE@'/,
    );
  });
});
