import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Ajv from 'ajv';
import { hookPaths, installHooks } from './installer';
import { HOOK_EVENTS } from './hook-script';

const SCHEMA_PATH = join(__dirname, '..', '..', 'test', 'fixtures', 'claude-code-settings.schema.json');

describe('hooks install against the Claude Code settings schema', () => {
  const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8'));
  const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);
  const install = (existing?: object) => {
    const dir = mkdtempSync(join(tmpdir(), 'hooks-schema-'));
    const settings = join(dir, '.claude', 'settings.json');
    if (existing) {
      installHooks(hookPaths(settings, { coord: '/bin/true', coordbus: '/bin/true' }), {});
      writeFileSync(settings, JSON.stringify(existing));
    }
    installHooks(hookPaths(settings, { coord: '/bin/true', coordbus: '/bin/true' }), {});
    return JSON.parse(readFileSync(settings, 'utf8'));
  };

  it('wires every event the schema knows except WorktreeCreate (its hook would replace worktree creation)', () => {
    const known = Object.keys(schema.properties.hooks.properties).sort();
    expect([...HOOK_EVENTS, 'WorktreeCreate'].sort()).toEqual(known);
  });

  it('writes settings that validate, alone and beside the user’s own hooks', () => {
    const fresh = install();
    expect(validate(fresh)).toBe(true);
    expect(Object.keys(fresh.hooks).sort()).toEqual([...HOOK_EVENTS].sort());
    expect(fresh.hooks.PreToolUse[0].matcher).toBe('*');
    expect(fresh.hooks.Stop[0].matcher).toBeUndefined();
    const mixed = install({
      model: 'x',
      hooks: {
        PostToolUse: [{ matcher: 'Edit', hooks: [{ type: 'command', command: 'prettier --write' }] }],
      },
    });
    expect(validate(mixed)).toBe(true);
    expect(mixed.hooks.PostToolUse).toHaveLength(2);
  });

  it('the schema can fail: an unknown event or a hook without a command is refused', () => {
    expect(validate({ hooks: { PostToolUze: [] } })).toBe(false);
    expect(validate({ hooks: { Stop: [{ hooks: [{ type: 'command' }] }] } })).toBe(false);
  });
});
