import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidError } from '@coordbus/envelope';
import { gitWorktreeRoot, normaliseResource } from './resource-name';

describe('normaliseResource', () => {
  let top: string;
  let repo: string;
  beforeAll(() => {
    top = mkdtempSync(join(tmpdir(), 'coord-names-'));
    repo = join(top, 'repo');
    mkdirSync(join(repo, 'src', 'deep'), { recursive: true });
    // A linked worktree has a .git FILE; a clone a directory. Either marks the root.
    writeFileSync(join(repo, '.git'), 'gitdir: /elsewhere\n');
    writeFileSync(join(repo, 'src', 'auth.ts'), '');
    writeFileSync(join(repo, 'README'), '');
  });
  afterAll(() => rmSync(top, { recursive: true, force: true }));

  it('finds the worktree root from any directory inside it', () => {
    expect(gitWorktreeRoot(join(repo, 'src', 'deep'))).toBe(repo);
    expect(gitWorktreeRoot(top)).toBeUndefined();
  });

  it.each([
    ['src/auth.ts', ''],
    ['./src/auth.ts', ''],
    ['src/./deep/../auth.ts', ''],
    ['auth.ts', 'src'],
    ['./auth.ts', 'src'],
    ['../../src/auth.ts', 'src/deep'],
    ['../auth.ts', 'src/deep'],
  ])('%s from ./%s is src/auth.ts', (name, dir) => {
    expect(normaliseResource(name, join(repo, dir))).toBe('src/auth.ts');
  });

  it('keeps labels as typed, normalises globs, refuses paths outside the root', () => {
    expect(normaliseResource('deploy-prod', repo)).toBe('deploy-prod');
    expect(normaliseResource('README', repo)).toBe('README');
    expect(normaliseResource('./src/**', repo)).toBe('src/**');
    expect(normaliseResource('**/*.ts', join(repo, 'src'))).toBe('src/**/*.ts');
    expect(normaliseResource(join(repo, 'src', 'auth.ts'), top)).toBe(join(repo, 'src', 'auth.ts'));
    expect(() => normaliseResource('../../x', join(repo, 'src'))).toThrow(InvalidError);
    expect(() => normaliseResource('/etc/passwd', repo)).toThrow(/outside the git worktree/);
  });

  it('outside a worktree folds . and .. in place and refuses climbing', () => {
    expect(normaliseResource('./a/../b/c', top)).toBe('b/c');
    expect(() => normaliseResource('../x', top)).toThrow(/climbs above/);
  });
});
