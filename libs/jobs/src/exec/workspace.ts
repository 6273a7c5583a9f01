import { delimiter, isAbsolute, normalize, sep } from 'node:path';
import type Redis from 'ioredis';
import type { JobKeys } from '../store/job-store';

/**
 * Which worktrees a job-coordinator replica can run jobs in. A containerised replica sees only
 * the workspace mounted into it (JOBS_WORKSPACE_ROOTS, the same paths as on the host); one on the
 * host sees everything (`/`). Each replica advertises its roots beside its runner heartbeat, so a
 * submitter can refuse at once a job whose cwd no live replica can see, instead of queueing it
 * for a replica that would fail it later with "working directory does not exist".
 */

/** `JOBS_WORKSPACE_ROOTS` as normalised roots; empty or unset: `['/']` (everything). */
export function parseWorkspaceRoots(value: string | undefined): string[] {
  const parts = (value ?? '').split(delimiter).filter((p) => p.trim() !== '');
  const bad = parts.filter((p) => !isAbsolute(p));
  if (bad.length) throw new Error(`workspace roots must be absolute paths (got ${bad.join(', ')})`);
  const roots = parts.map((p) => normalize(p).replace(/(.)\/+$/, '$1'));
  return roots.length ? [...new Set(roots)] : [sep];
}

/** Does `cwd` lie at or under one of `roots`? */
export function servesPath(roots: readonly string[], cwd: string): boolean {
  const path = normalize(cwd);
  return roots.some((r) => r === sep || path === r || path.startsWith(r + sep));
}

interface Advert {
  roots: string[];
  until: number;
}

/** The roots each live replica serves, in one hash of the `{jobs}` tag (field = runner id). */
export class WorkspaceRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly keys: JobKeys,
  ) {}

  /** Refreshed with the runner heartbeat; the entry counts as live until `ttlMs` from now. */
  async advertise(runnerId: string, roots: readonly string[], ttlMs: number): Promise<void> {
    const advert: Advert = { roots: [...roots], until: Date.now() + ttlMs };
    await this.redis.hset(this.keys.workspaces, runnerId, JSON.stringify(advert));
  }

  async withdraw(runnerId: string): Promise<void> {
    await this.redis.hdel(this.keys.workspaces, runnerId);
  }

  /** Roots of every replica whose advert has not expired; expired ones are removed. */
  async live(now = Date.now()): Promise<string[][]> {
    const all = await this.redis.hgetall(this.keys.workspaces);
    const live: string[][] = [];
    const stale: string[] = [];
    for (const [runner, raw] of Object.entries(all)) {
      const advert = JSON.parse(raw) as Advert;
      if (advert.until > now) live.push(advert.roots);
      else stale.push(runner);
    }
    if (stale.length) await this.redis.hdel(this.keys.workspaces, ...stale).catch(() => undefined);
    return live;
  }

  /**
   * Why a job in `cwd` cannot run, or null. With no live replica at all the job is queued as
   * usual (an outage is waited out); with live replicas none of which serves `cwd` it is refused.
   */
  async refusal(cwd: string): Promise<string | null> {
    const live = await this.live();
    if (!live.length || live.some((roots) => servesPath(roots, cwd))) return null;
    const served = [...new Set(live.flat())].sort().join(', ');
    return (
      `no job-coordinator can see ${cwd}: the running replicas serve ${served} ` +
      '(in Docker, set COORDBUS_WORKSPACE to a directory holding your worktrees)'
    );
  }
}
