import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '../../..');

function newest(dir: string): number {
  let t = 0;
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    const st = statSync(full);
    t = Math.max(t, st.isDirectory() ? newest(full) : name.endsWith('.ts') ? st.mtimeMs : 0);
  }
  return t;
}

/** Runs `npm run build` (scripts/build.mjs) when dist/ lacks the libs or is older than their sources. */
export function ensureBuilt(): void {
  const out = join(ROOT, 'dist/libs/redis-streams/src/index.js');
  const src = Math.max(newest(join(ROOT, 'libs/redis-streams/src')), newest(join(ROOT, 'libs/envelope/src')));
  if (existsSync(out) && statSync(out).mtimeMs >= src) return;
  const run = spawnSync(process.execPath, [join(ROOT, 'scripts/build.mjs')], { cwd: ROOT, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`npm run build failed:\n${run.stdout}\n${run.stderr}`);
}
