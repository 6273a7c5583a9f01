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
    expect(c.variadic).toBe(false);
    expect(c.lua).toBe(
      '-- head\nlocal function a() return 1 end\n\n-- (a included above)\nlocal function b() return a() end\n\nreturn a() + b()\n',
    );
    expect(c.sha).toMatch(/^[0-9a-f]{40}$/);
  });

  it('reads `<name>-<n>+.lua` as a command taking n keys or more', () => {
    const commands = buildCommands({ 'many-1+.lua': 'return #KEYS\n', 'other-1x.lua': 'return 0\n' });
    expect(Object.keys(commands)).toEqual(['many']);
    expect(commands.many).toMatchObject({ numberOfKeys: 1, variadic: true });
  });

  it('refuses a #! line in an included file (Redis reads flags only on the first line)', () => {
    expect(() =>
      buildCommands({ 'x-1.lua': '#!lua\n--- @include "y"\n', 'y.lua': '#!lua\nreturn 1\n' }, 'dir'),
    ).toThrow('dir/y.lua: an included file cannot carry a #! line');
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
        const header = /^(?:#!lua[^\n]*\n)?--\[\[\n([\s\S]*?)\n\]\]\n/.exec(text)?.[1] ?? '';
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

/** Writes Redis refuses at `maxmemory` (command flag `denyoom`), of those our scripts could use. */
const DENY_OOM = [
  'XADD',
  'SET',
  'SETNX',
  'SETEX',
  'PSETEX',
  'HSET',
  'HSETNX',
  'HINCRBY',
  'INCR',
  'INCRBY',
  'ZADD',
  'ZINCRBY',
  'SADD',
  'RPUSH',
  'LPUSH',
  'LINSERT',
  'LSET',
  'APPEND',
  'XGROUP',
  'RESTORE',
  'COPY',
];
/** Every other write (they only remove or re-time data, so Redis lets them through at `maxmemory`). */
const OTHER_WRITES = [
  'DEL',
  'UNLINK',
  'HDEL',
  'ZREM',
  'ZREMRANGEBYSCORE',
  'ZREMRANGEBYRANK',
  'SREM',
  'LREM',
  'LPOP',
  'RPOP',
  'LTRIM',
  'XDEL',
  'XTRIM',
  'XACK',
  'XCLAIM',
  'XAUTOCLAIM',
  'EXPIRE',
  'PEXPIRE',
  'PERSIST',
];
const called = (lua: string) =>
  new Set([...lua.matchAll(/redis\.p?call\(\s*'([A-Za-z]+)'/g)].map((m) => m[1].toUpperCase()));

describe('every command meets maxmemory as a whole (Redis 7 script flags)', () => {
  // Without a #! line Redis checks OOM only until a script's first write: fanout-2 opened with a
  // ZREMRANGEBYSCORE, so its XADDs went on past maxmemory and the fan-out never saw the outage.
  const commands = commandDirs().flatMap((dir) =>
    Object.values(buildCommands(readLuaFiles(dir), dir)).map((c) => [c.name, c] as const),
  );
  it.each(commands)('%s opens with #!lua and its flags match what it calls', (_name, c) => {
    const first = c.lua.slice(0, c.lua.indexOf('\n'));
    const m = /^#!lua(?: flags=([a-z-]+(?:,[a-z-]+)*))?$/.exec(first);
    expect({ command: c.name, first: m ? '#!lua' : first }).toEqual({ command: c.name, first: '#!lua' });
    const flags = (m?.[1] ?? '').split(',').filter(Boolean);
    const calls = called(c.lua);
    const denyOom = DENY_OOM.filter((w) => calls.has(w));
    const writes = [...denyOom, ...OTHER_WRITES.filter((w) => calls.has(w))];
    // allow-oom only for a script that only frees memory (a trim, an ack, a delete): it must run
    // when Redis is full. no-writes only for a reader. Everything else is refused whole at OOM.
    if (flags.includes('allow-oom'))
      expect({ command: c.name, denyOom }).toEqual({ command: c.name, denyOom: [] });
    if (flags.includes('no-writes'))
      expect({ command: c.name, writes }).toEqual({ command: c.name, writes: [] });
    if (!flags.length)
      expect({ command: c.name, writes: writes.length > 0 }).toEqual({ command: c.name, writes: true });
    expect(flags.filter((f) => f !== 'allow-oom' && f !== 'no-writes')).toEqual([]);
  });
});
