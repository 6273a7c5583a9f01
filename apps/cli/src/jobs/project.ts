import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';

export const HOOKS_FILE = join('.coordbus', 'hooks.yml');

/** The nearest `.coordbus/hooks.yml` at or above `from`, with its project root; null when none. */
export function findHooksFile(from: string): { file: string; root: string } | null {
  let dir = resolve(from);
  for (;;) {
    const file = join(dir, HOOKS_FILE);
    if (existsSync(file)) return { file, root: dir };
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/**
 * The current git branch of `root`, read from `.git/HEAD` without starting git (a worktree's
 * `.git` is a file pointing at its gitdir). Null when detached or not a repository.
 */
export function currentBranch(root: string): string | null {
  try {
    let gitDir = join(root, '.git');
    if (!existsSync(gitDir)) return null;
    if (statSync(gitDir).isFile()) {
      const m = /^gitdir:\s*(.+)$/m.exec(readFileSync(gitDir, 'utf8'));
      if (!m) return null;
      gitDir = isAbsolute(m[1].trim()) ? m[1].trim() : resolve(root, m[1].trim());
    }
    const head = readFileSync(join(gitDir, 'HEAD'), 'utf8').trim();
    const m = /^ref:\s*refs\/heads\/(.+)$/.exec(head);
    return m ? m[1] : null;
  } catch {
    return null;
  }
}
