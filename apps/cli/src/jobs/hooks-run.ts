import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { COORD_VARS, EnvReader } from '@coordbus/config';
import { newUlid } from '@coordbus/envelope';
import {
  hookEventEnv,
  hookEventInput,
  HookEventInput,
  HOOK_EVENT_MAX_BYTES,
  ConditionContext,
  HookJobDef,
  type JobMeta,
  newJob,
  parseHooksFile,
  publicRow,
  skipReason,
} from '@coordbus/jobs';
import { withContext } from './context';
import { currentBranch, findHooksFile } from './project';

export interface HooksRunFlags {
  file?: string;
  worktree?: string;
  json?: boolean;
}

/**
 * `coordbus hooks run <hook>`: fires one hook of `.coordbus/hooks.yml`. One invocation id for the
 * firing; condition-skipped jobs are recorded as `skipped` with the reason; background jobs go to
 * the queue; foreground jobs then run here, one after another. No hooks file, or a hook it does
 * not define, is a silent success: agent hooks call this for every event.
 */
export async function hooksRunCommand(hook: string, flags: HooksRunFlags): Promise<number> {
  const found = flags.file
    ? { file: resolve(flags.file), root: resolve(flags.file, '..', '..') }
    : findHooksFile(process.cwd());
  if (!found || !existsSync(found.file)) {
    if (flags.file) process.stderr.write(`coordbus: no hooks file at ${found?.file ?? flags.file}\n`);
    return flags.file ? 4 : 0;
  }
  const parsed = parseHooksFile(readFileSync(found.file, 'utf8'), found.file);
  // Own keys only: `constructor` or `hasOwnProperty` is a hook the file does not define.
  const defs = Object.hasOwn(parsed.hooks, hook) ? parsed.hooks[hook] : undefined;
  if (!defs?.length) return 0;

  const event = hookEventInput(await readEvent(), hook);
  const root = found.root;
  const ctx: ConditionContext = {
    // The event's fields count as set: `only: { env_equals: { COORDBUS_TOOL_NAME: Edit } }` is a matcher.
    env: { ...process.env, ...event.env },
    fileExists: (p) => existsSync(isAbsolute(p) ? p : resolve(root, p)),
    branch: currentBranch(root),
    platform: process.platform,
  };
  const invocationId = newUlid();
  const worktree = flags.worktree ?? root;
  // Fired by an agent hook: tag the jobs with the agent session, so `jobs cancel --tag session:<id>` works.
  const session = new EnvReader().get(COORD_VARS.COORD_SESSION_ID);
  const extraTags = session ? [`session:${session}`] : [];
  const out = (job: JobMeta, text: string) => {
    if (flags.json) process.stdout.write(`${JSON.stringify(publicRow(job))}\n`);
    else process.stdout.write(text);
  };
  if (!flags.json) process.stdout.write(`invocation ${invocationId}: hook ${hook}, ${defs.length} job(s)\n`);

  return withContext(async (c) => {
    const submitter = c.submitter();
    const foreground: { meta: JobMeta; secrets: Record<string, string> }[] = [];
    let refused = 0;
    for (const def of defs) {
      const { meta, secrets } = newJob(
        requestOf({ ...def, tags: [...def.tags, ...extraTags] }, hook, worktree, root, event),
        invocationId,
      );
      const reason = skipReason(def, ctx);
      if (reason) {
        const skipped = await submitter.recordSkipped(meta, reason);
        out(skipped, `  ${meta.name}: skipped (${reason}) ${meta.id}\n`);
      } else if (def.background) {
        const submitted = await submitter.submitBackground(meta, secrets);
        if (submitted.status === 'failed') refused++;
        out(
          submitted,
          submitted.status === 'failed'
            ? `  ${meta.name}: failed (${submitted.reason}) ${meta.id}\n`
            : `  ${meta.name}: queued ${meta.id}\n`,
        );
      } else {
        await submitter.recordForeground(meta);
        foreground.push({ meta, secrets });
      }
    }
    let failed = refused;
    for (const { meta, secrets } of foreground) {
      if (!flags.json) process.stdout.write(`  ${meta.name}: running ${meta.id}\n`);
      const final = await c.runForeground(meta, secrets, !flags.json);
      if (!final || final.status !== 'succeeded') failed++;
      if (final) out(final, `  ${meta.name}: ${final.status}${final.reason ? ` (${final.reason})` : ''}\n`);
    }
    return failed ? 1 : 0;
  });
}

/**
 * The agent's hook event: Claude Code writes it to the hook's stdin, and the agent hook script
 * passes it on. Read unless stdin is a terminal (`hooks run` typed by hand). Only a bounded prefix
 * is kept (the rest is drained so the writer is not cut off); an event too long to parse still
 * fires the hook, with what hookEventInput can say about it.
 */
async function readEvent(limit = 16 * HOOK_EVENT_MAX_BYTES): Promise<string | null> {
  if (process.stdin.isTTY) return null;
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    if (size + chunk.length > limit) over = true;
    else chunks.push(chunk);
    size += chunk.length;
  }
  return over ? null : Buffer.concat(chunks).toString('utf8');
}

function requestOf(def: HookJobDef, hook: string, worktree: string, root: string, event: HookEventInput) {
  return {
    name: def.name,
    hook,
    worktree,
    tags: def.tags,
    argv: def.argv,
    shell: def.shell,
    cwd: def.cwd ? resolve(root, def.cwd) : root,
    // The agent's hook event variables (session, project) and the event's main fields reach the
    // job; nothing else of this shell. The event itself is its stdin.
    env: { ...hookEventEnv(process.env), ...event.env, ...def.env },
    stdin: event.stdin,
    timeout_ms: def.timeout_ms,
    sample_every: def.sample_every,
    keep_last: null,
    retention_ms: null,
    background: def.background,
  };
}
