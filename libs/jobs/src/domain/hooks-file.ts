import { parse as parseYaml } from 'yaml';
import { InvalidError } from '@coordbus/envelope';
import { parseDuration } from '@coordbus/config';

/**
 * `.coordbus/hooks.yml`:
 *
 * ```yaml
 * SessionStart:              # a hook name at the top level (agent events fire theirs);
 *   jobs:                    # `jobs:` is optional: the list may sit right under the name
 *     - name: deps
 *       run: [npm, ci]       # argv list, run without a shell ...
 *       background: true     # queue it (default false: runs inline, in file order)
 *       tags: [setup]
 *       env: { NODE_ENV: test }
 *       cwd: web             # relative to the project root (the directory holding .coordbus/)
 *       timeout: 10m
 *       log: { sampling_every_nth: 10 }
 *       skip: { env: CI }                 # skipped when any skip condition holds
 *       only: { branch: 'feature/*' }     # run only when every only condition holds
 * hooks:                     # hook names may also sit under a `hooks:` mapping
 *   Stop:
 *     - name: lint
 *       run: npm run lint && npm test   # ... or a string, which needs shell: true
 *       shell: true
 * ```
 *
 * Conditions (one key each; a list means "any" under `skip` and "all" under `only`):
 * `true`/`false`; `{ env: NAME }` (set and non-empty); `{ env_equals: { NAME: value } }`;
 * `{ file_exists: path }` (relative to the project root); `{ branch: glob }` (`*` any run of
 * characters except `/`, `**` anything, `?` one character); `{ platform: linux }`;
 * `{ not: cond }`, `{ all: [conds] }`, `{ any: [conds] }`.
 */
export interface HookJobDef {
  name: string;
  argv: string[];
  shell: boolean;
  background: boolean;
  tags: string[];
  env: Record<string, string>;
  cwd: string | null;
  timeout_ms: number | null;
  sample_every: number;
  skip: Condition[];
  only: Condition[];
}

export type Condition =
  | { kind: 'const'; value: boolean }
  | { kind: 'env'; name: string }
  | { kind: 'env_equals'; values: Record<string, string> }
  | { kind: 'file_exists'; path: string }
  | { kind: 'branch'; glob: string }
  | { kind: 'platform'; value: string }
  | { kind: 'not'; cond: Condition }
  | { kind: 'all'; conds: Condition[] }
  | { kind: 'any'; conds: Condition[] };

export interface HooksFile {
  hooks: Record<string, HookJobDef[]>;
}

/** What conditions are evaluated against; the CLI fills it from the real world. */
export interface ConditionContext {
  env: Record<string, string | undefined>;
  fileExists: (relativePath: string) => boolean;
  branch: string | null;
  platform: string;
}

const JOB_KEYS = new Set([
  'name',
  'run',
  'shell',
  'background',
  'tags',
  'env',
  'cwd',
  'timeout',
  'log',
  'skip',
  'only',
]);
const JOB_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

/** Parses and validates a hooks file; every problem is reported at once (`InvalidError` with paths). */
export function parseHooksFile(text: string, source = 'hooks.yml'): HooksFile {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new InvalidError(`${source} is not valid YAML`, [(err as Error).message.split('\n')[0]]);
  }
  const problems: string[] = [];
  const hooks: Record<string, HookJobDef[]> = {};
  if (doc === null || doc === undefined) return { hooks };
  if (!isObject(doc))
    throw new InvalidError(`invalid ${source}`, ['(root): must be a mapping of hook names to jobs']);
  // Hook names sit at the top level (what the agent-hook scripts grep for without starting
  // Node) or under a `hooks:` mapping; both forms may be mixed.
  const entries: [string, unknown, string][] = [];
  for (const [key, value] of Object.entries(doc)) {
    if (key !== 'hooks') entries.push([key, value, key]);
    else if (!isObject(value)) problems.push('hooks: must be a mapping of hook name to jobs');
    else for (const [hook, v] of Object.entries(value)) entries.push([hook, v, `hooks.${hook}`]);
  }
  const seen = new Set<string>();
  for (const [hook, value, at] of entries) {
    if (seen.has(hook)) problems.push(`${at}: hook ${hook} is defined twice`);
    seen.add(hook);
    let list: unknown = value;
    if (isObject(value)) {
      for (const key of Object.keys(value))
        if (key !== 'jobs') problems.push(`${at}.${key}: unknown key (expected \`jobs\`)`);
      list = value.jobs;
    }
    if (!Array.isArray(list)) {
      problems.push(`${at}: must be a list of jobs (or { jobs: [...] })`);
      continue;
    }
    const jobs: HookJobDef[] = [];
    const names = new Set<string>();
    list.forEach((raw, i) => {
      const job = parseJob(raw, `${at}.jobs[${i}]`, problems);
      if (!job) return;
      if (names.has(job.name))
        problems.push(`${at}.jobs[${i}].name: duplicate job name ${JSON.stringify(job.name)}`);
      names.add(job.name);
      jobs.push(job);
    });
    hooks[hook] = jobs;
  }
  if (problems.length) throw new InvalidError(`invalid ${source}`, problems);
  return { hooks };
}

function parseJob(raw: unknown, at: string, problems: string[]): HookJobDef | undefined {
  if (!isObject(raw)) {
    problems.push(`${at}: must be a mapping`);
    return undefined;
  }
  const before = problems.length;
  for (const key of Object.keys(raw)) if (!JOB_KEYS.has(key)) problems.push(`${at}.${key}: unknown key`);
  const name = raw.name;
  if (typeof name !== 'string' || !JOB_NAME.test(name)) {
    problems.push(`${at}.name: must be 1-128 letters, digits, '_', '.', ':' or '-'`);
  }
  const shell = raw.shell ?? false;
  if (typeof shell !== 'boolean') problems.push(`${at}.shell: must be true or false`);
  let argv: string[] = [];
  if (typeof raw.run === 'string') {
    if (shell !== true)
      problems.push(
        `${at}.run: a string runs through a shell, which needs \`shell: true\` (or give an argv list)`,
      );
    if (!raw.run.trim()) problems.push(`${at}.run: must not be empty`);
    argv = [raw.run];
  } else if (
    Array.isArray(raw.run) &&
    raw.run.length &&
    raw.run.every((a) => ['string', 'number', 'boolean'].includes(typeof a))
  ) {
    argv = raw.run.map(String);
    if (shell === true) argv = [argv.join(' ')];
  } else {
    problems.push(`${at}.run: must be a non-empty argv list of strings, or a string with shell: true`);
  }
  const background = raw.background ?? false;
  if (typeof background !== 'boolean') problems.push(`${at}.background: must be true or false`);
  const tags = raw.tags ?? [];
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string' && t.length > 0)) {
    problems.push(`${at}.tags: must be a list of non-empty strings`);
  }
  const env: Record<string, string> = {};
  if (raw.env !== undefined) {
    if (!isObject(raw.env)) problems.push(`${at}.env: must be a mapping of NAME: value`);
    else
      for (const [k, v] of Object.entries(raw.env)) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) problems.push(`${at}.env.${k}: not a valid variable name`);
        else if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean')
          problems.push(`${at}.env.${k}: must be a scalar`);
        else env[k] = String(v);
      }
  }
  const cwd = raw.cwd ?? null;
  if (cwd !== null && (typeof cwd !== 'string' || !cwd)) problems.push(`${at}.cwd: must be a path`);
  let timeout_ms: number | null = null;
  if (raw.timeout !== undefined) {
    timeout_ms = typeof raw.timeout === 'string' ? (parseDuration(raw.timeout) ?? null) : null;
    if (!timeout_ms) problems.push(`${at}.timeout: must be a duration like 30s, 10m, 1h`);
  }
  let sample_every = 1;
  if (raw.log !== undefined) {
    if (!isObject(raw.log) || Object.keys(raw.log).some((k) => k !== 'sampling_every_nth')) {
      problems.push(`${at}.log: only \`sampling_every_nth\` is supported`);
    } else if (raw.log.sampling_every_nth !== undefined) {
      const n = raw.log.sampling_every_nth;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1)
        problems.push(`${at}.log.sampling_every_nth: must be an integer >= 1`);
      else sample_every = n;
    }
  }
  const skip = parseConditionList(raw.skip, `${at}.skip`, problems);
  const only = parseConditionList(raw.only, `${at}.only`, problems);
  if (problems.length > before) return undefined;
  return {
    name: name as string,
    argv,
    shell: shell as boolean,
    background: background as boolean,
    tags: tags as string[],
    env,
    cwd: cwd as string | null,
    timeout_ms,
    sample_every,
    skip,
    only,
  };
}

function parseConditionList(raw: unknown, at: string, problems: string[]): Condition[] {
  if (raw === undefined || raw === null) return [];
  const list = Array.isArray(raw) ? raw : [raw];
  const out: Condition[] = [];
  list.forEach((c, i) => {
    const cond = parseCondition(c, Array.isArray(raw) ? `${at}[${i}]` : at, problems);
    if (cond) out.push(cond);
  });
  return out;
}

export function parseCondition(raw: unknown, at: string, problems: string[]): Condition | undefined {
  if (typeof raw === 'boolean') return { kind: 'const', value: raw };
  if (!isObject(raw) || Object.keys(raw).length !== 1) {
    problems.push(
      `${at}: a condition is true/false or a mapping with exactly one of env, env_equals, file_exists, branch, platform, not, all, any`,
    );
    return undefined;
  }
  const [key, value] = Object.entries(raw)[0];
  const str = (what: string) => {
    if (typeof value === 'string' && value) return value;
    problems.push(`${at}.${key}: must be ${what}`);
    return undefined;
  };
  switch (key) {
    case 'env': {
      const name = str('a variable name');
      return name ? { kind: 'env', name } : undefined;
    }
    case 'env_equals': {
      if (!isObject(value) || !Object.keys(value).length) {
        problems.push(`${at}.env_equals: must be a mapping of NAME: value`);
        return undefined;
      }
      return {
        kind: 'env_equals',
        values: Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)])),
      };
    }
    case 'file_exists': {
      const path = str('a path');
      return path ? { kind: 'file_exists', path } : undefined;
    }
    case 'branch': {
      const glob = str('a branch glob');
      return glob ? { kind: 'branch', glob } : undefined;
    }
    case 'platform': {
      const v = str('a platform such as linux or darwin');
      return v ? { kind: 'platform', value: v } : undefined;
    }
    case 'not': {
      const cond = parseCondition(value, `${at}.not`, problems);
      return cond ? { kind: 'not', cond } : undefined;
    }
    case 'all':
    case 'any': {
      if (!Array.isArray(value) || !value.length) {
        problems.push(`${at}.${key}: must be a non-empty list of conditions`);
        return undefined;
      }
      const conds = value.map((c, i) => parseCondition(c, `${at}.${key}[${i}]`, problems));
      if (conds.some((c) => !c)) return undefined;
      return { kind: key, conds: conds as Condition[] };
    }
    default:
      problems.push(
        `${at}.${key}: unknown condition (expected env, env_equals, file_exists, branch, platform, not, all, any)`,
      );
      return undefined;
  }
}

/** Evaluates a condition; returns whether it holds and a human description of why. */
export function evaluate(cond: Condition, ctx: ConditionContext): { holds: boolean; why: string } {
  switch (cond.kind) {
    case 'const':
      return { holds: cond.value, why: String(cond.value) };
    case 'env': {
      const set = !!ctx.env[cond.name];
      return { holds: set, why: `env ${cond.name} is ${set ? 'set' : 'not set'}` };
    }
    case 'env_equals': {
      for (const [k, v] of Object.entries(cond.values)) {
        if (ctx.env[k] !== v) return { holds: false, why: `env ${k} is not ${JSON.stringify(v)}` };
      }
      return {
        holds: true,
        why: Object.entries(cond.values)
          .map(([k, v]) => `env ${k} is ${JSON.stringify(v)}`)
          .join(' and '),
      };
    }
    case 'file_exists': {
      const exists = ctx.fileExists(cond.path);
      return { holds: exists, why: `file ${cond.path} ${exists ? 'exists' : 'does not exist'}` };
    }
    case 'branch': {
      if (ctx.branch === null) return { holds: false, why: 'not on a branch' };
      const holds = globToRegExp(cond.glob).test(ctx.branch);
      return { holds, why: `branch ${ctx.branch} ${holds ? 'matches' : 'does not match'} ${cond.glob}` };
    }
    case 'platform': {
      const holds = ctx.platform === cond.value;
      return { holds, why: `platform is ${ctx.platform}` };
    }
    case 'not': {
      const r = evaluate(cond.cond, ctx);
      return { holds: !r.holds, why: `not (${r.why})` };
    }
    case 'all': {
      const whys: string[] = [];
      for (const c of cond.conds) {
        const r = evaluate(c, ctx);
        if (!r.holds) return r;
        whys.push(r.why);
      }
      return { holds: true, why: whys.join(' and ') };
    }
    case 'any': {
      const whys: string[] = [];
      for (const c of cond.conds) {
        const r = evaluate(c, ctx);
        if (r.holds) return r;
        whys.push(r.why);
      }
      return { holds: false, why: whys.join(' and ') };
    }
  }
}

/** Why a job is skipped (`skip` any holds, or an `only` fails), or null when it runs. */
export function skipReason(job: Pick<HookJobDef, 'skip' | 'only'>, ctx: ConditionContext): string | null {
  for (const c of job.skip) {
    const r = evaluate(c, ctx);
    if (r.holds) return `skip: ${r.why}`;
  }
  for (const c of job.only) {
    const r = evaluate(c, ctx);
    if (!r.holds) return `only: ${r.why}`;
  }
  return null;
}

export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i];
    if (ch === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '.';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
