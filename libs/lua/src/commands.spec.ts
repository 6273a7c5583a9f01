import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { buildCommands, readLuaFiles } from './commands';

describe('buildCommands', () => {
  it('takes name and key count from the file name and resolves includes once, relative to the file', () => {
    const commands = buildCommands({
      'doIt-2.lua': '-- head\n--- @include "includes/a"\n--- @include "includes/b"\nreturn a() + b()\n',
      'includes/a.lua': 'local function a() return 1 end\n',
      'includes/b.lua': '--- @include "a"\nlocal function b() return a() end\n',
      'notes.lua': 'return 0\n',
    });
    expect(Object.keys(commands)).toEqual(['doIt']);
    const c = commands.doIt;
    expect(c.numberOfKeys).toBe(2);
    expect(c.lua).toBe(
      '-- head\nlocal function a() return 1 end\n\n-- (a included above)\nlocal function b() return a() end\n\nreturn a() + b()\n',
    );
    expect(c.sha).toMatch(/^[0-9a-f]{40}$/);
  });

  it('names the file of a missing include and of a cycle', () => {
    expect(() => buildCommands({ 'x-1.lua': '--- @include "includes/nope"\n' }, 'dir')).toThrow(
      'dir/x-1.lua: --- @include "includes/nope" names includes/nope.lua, which does not exist',
    );
    expect(() =>
      buildCommands({ 'x-1.lua': '--- @include "y"\n', 'y.lua': '--- @include "x-1"\n' }, 'dir'),
    ).toThrow('dir: x-1.lua includes y.lua includes x-1.lua: an include cycle');
  });
});

/** Every `src/commands` directory of the repository. */
function commandDirs(): string[] {
  const root = join(__dirname, '..', '..', '..');
  const out: string[] = [];
  for (const top of ['apps', 'libs']) {
    for (const pkg of readdirSync(join(root, top))) {
      const dir = join(root, top, pkg, 'src', 'commands');
      if (statSync(join(root, top, pkg)).isDirectory() && safeIsDir(dir)) out.push(dir);
    }
  }
  return out;
}

function safeIsDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

describe('every commands directory of the repository', () => {
  const dirs = commandDirs();
  it('exists', () => expect(dirs.length).toBeGreaterThan(0));

  it.each(dirs.map((d) => [relative(join(__dirname, '..', '..', '..'), d), d]))(
    '%s: each command opens with a header naming its KEYS, ARGV and what it returns, and builds',
    (_rel, dir) => {
      const files = readLuaFiles(dir);
      const commands = buildCommands(files, dir);
      expect(Object.keys(commands).length).toBeGreaterThan(0);
      for (const [file, text] of Object.entries(files)) {
        const header = /^--\[\[\n([\s\S]*?)\n\]\]\n/.exec(text)?.[1] ?? '';
        expect({ file, hasHeader: header.length > 0 }).toEqual({ file, hasHeader: true });
        for (const section of ['KEYS', 'ARGV', 'Returns']) {
          expect({ file, section, found: new RegExp(`^${section}\\b`, 'm').test(header) }).toEqual({
            file,
            section,
            found: true,
          });
        }
      }
      // Nothing outside `KEYS[1..n]`: a script never reaches past the keys its file name declares.
      for (const c of Object.values(commands)) {
        const used = [...c.lua.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
        expect({ command: c.name, max: Math.max(0, ...used) <= c.numberOfKeys }).toEqual({
          command: c.name,
          max: true,
        });
      }
    },
  );
});
