import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import { InvalidError } from '@coordbus/envelope';

/**
 * The root of the git worktree containing `dir` (the nearest ancestor holding `.git`, a directory
 * in a clone and a file in a linked worktree), or undefined outside one. No `git` process: this
 * runs on the `coord lock` hot path.
 */
export function gitWorktreeRoot(dir: string): string | undefined {
  let cur = resolve(dir);
  for (;;) {
    if (existsSync(join(cur, '.git'))) return cur;
    const up = dirname(cur);
    if (up === cur) return undefined;
    cur = up;
  }
}

/**
 * Whether a lock name is meant as a path: it has a `/`, starts with `.`, or names something that
 * exists in `cwd`. Other names (`repo`, `deploy-prod`) are labels and stay exactly as given.
 */
function pathLike(name: string, cwd: string): boolean {
  return name.includes('/') || name.startsWith('.') || existsSync(join(cwd, name));
}

/**
 * What a user means by a lock name, so `src/auth.ts`, `./src/auth.ts` and `../repo/src/auth.ts`
 * (from inside the repo) are one lock: a path-like name is resolved against `cwd` (`.`, `..`
 * folded) and written relative to the git worktree root when `cwd` is inside one, with `/`
 * separators. Globs (`src/**`) are normalised the same way; their wildcards are kept.
 * Outside a worktree a relative name is folded in place (`./a/../b` -> `b`).
 * @throws InvalidError for a path that leaves the worktree root, or a relative one that climbs
 * above where it starts outside a worktree.
 */
export function normaliseResource(name: string, cwd: string): string {
  if (!name || !pathLike(name, cwd)) return name;
  const root = gitWorktreeRoot(cwd);
  if (!root) {
    if (isAbsolute(name)) return posix.normalize(name.split(sep).join('/'));
    const folded = posix.normalize(name);
    if (folded === '..' || folded.startsWith('../')) {
      throw new InvalidError(`lock name ${JSON.stringify(name)} climbs above the current directory`, [
        'resource: a path inside the current directory, or run inside a git worktree',
      ]);
    }
    return folded === '.' ? '.' : folded.replace(/\/$/, '');
  }
  const rel = relative(root, resolve(cwd, name)).split(sep).join('/');
  if (rel === '..' || rel.startsWith('../') || isAbsolute(rel)) {
    throw new InvalidError(`lock name ${JSON.stringify(name)} is outside the git worktree ${root}`, [
      `resource: a path inside ${root}`,
    ]);
  }
  return rel === '' ? '.' : rel;
}
