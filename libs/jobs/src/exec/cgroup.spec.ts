import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobCgroup } from './cgroup';

describe('JobCgroup.spawnArgs command lookup', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cgroup-spec-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const viaShell = (args: [string, string[]]) => args[0] === '/bin/sh';

  it('answers as a full PATH search would after the command it found moved or went away', () => {
    const [a, b] = [join(dir, 'a'), join(dir, 'b')];
    for (const d of [a, b]) rmSync(d, { recursive: true, force: true });
    const cg = new JobCgroup(join(dir, 'cg'));
    const where = { cwd: dir, path: `${a}:${b}` };
    const install = (d: string) => {
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'tool'), '#!/bin/sh\n');
      chmodSync(join(d, 'tool'), 0o755);
    };
    expect(viaShell(cg.spawnArgs('tool', [], false, where))).toBe(false);
    install(b);
    expect(viaShell(cg.spawnArgs('tool', ['x'], false, where))).toBe(true);
    // Found again where it was last (one stat), and still when only another PATH entry has it.
    expect(cg.spawnArgs('tool', ['x'], false, where)[1].slice(-2)).toEqual(['tool', 'x']);
    install(a);
    rmSync(join(b, 'tool'));
    expect(viaShell(cg.spawnArgs('tool', [], false, where))).toBe(true);
    chmodSync(join(a, 'tool'), 0o644);
    expect(viaShell(cg.spawnArgs('tool', [], false, where))).toBe(false);
  });
});
