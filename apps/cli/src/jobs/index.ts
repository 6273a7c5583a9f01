import { Command } from 'commander';

/**
 * `coordbus jobs run|ls|logs|cancel|prune` and `coordbus hooks run <hook>` (issue #7). Only the
 * command definitions load here; each action loads its code (ioredis, bullmq — never Nest) when
 * it runs, so other commands start without paying for them.
 */
type Actions = typeof import('./commands');

function actions(): Actions {
  return require('./commands') as Actions;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** Runs an action: its return value becomes the exit code; a UsageError becomes exit 2. */
function act<A extends unknown[]>(cmd: Command, fn: (...args: A) => Promise<number>) {
  return async (...args: A) => {
    try {
      const code = await fn(...args);
      if (code) process.exitCode = code;
    } catch (err) {
      if (err instanceof actions().UsageError)
        cmd.error(`coordbus: ${err.message}`, { exitCode: 2, code: 'coordbus.usage' });
      throw err;
    }
  };
}

export function registerJobsCommands(program: Command): void {
  const jobs = program
    .command('jobs')
    .description('background hook jobs: run, list, follow logs, cancel, prune');

  const run = jobs
    .command('run')
    .description('run a command as a job (queued for the job-coordinator, or inline with --foreground)')
    .argument('<argv...>', 'the command and its arguments (after --)')
    .option('--hook <hook>', 'hook name the job belongs to', 'manual')
    .option('--worktree <path>', 'worktree the job belongs to (retention keeps the last K per worktree)')
    .option('--tag <tag>', 'tag (repeatable)', collect, [])
    .option('--name <name>', 'job name (default: the program name)')
    .option('--cwd <dir>', 'working directory (default: here)')
    .option(
      '--env <NAME=value>',
      "environment variable (repeatable; NAME alone passes this shell's value; *_TOKEN/_SECRET/_KEY/_PASSWORD are never stored)",
      collect,
      [],
    )
    .option('--timeout <dur>', 'SIGTERM the job after this long (SIGKILL after the grace): e.g. 30s, 10m')
    .option('--sample-every <n>', 'keep every nth stdout/stderr record')
    .option('--keep-last <k>', 'retention: keep this job while it is among the newest k of its worktree')
    .option('--retention <dur>', 'retention: keep this job this long after it ends')
    .option('--shell', 'run the command through /bin/sh -c (give it as one string)')
    .option('--foreground', "run here and now instead of queueing; exits with the job's exit code")
    .option('--json', 'print the job as JSON');
  run.action(act(run, (argv: string[], flags) => actions().runCommand(argv, flags)));

  const ls = jobs
    .command('ls')
    .description('list jobs, oldest first')
    .option('--status <status>', 'only this status')
    .option('--hook <hook>', 'only this hook')
    .option('--worktree <path>', 'only this worktree')
    .option('--tag <tag>', 'only jobs with this tag')
    .option('--inv <prefix>', 'only this invocation (id prefix)')
    .option('--limit <n>', 'only the newest n')
    .option('--json', 'one JSON array');
  ls.action(act(ls, (flags) => actions().lsCommand(flags)));

  const logs = jobs
    .command('logs')
    .description("show a job's structured log; --follow streams it until the job ends")
    .argument('<job>', 'job id (or a unique prefix)')
    .option('--stdout', 'stdout records')
    .option('--stderr', 'stderr records')
    .option('--status', 'status records')
    .option('--seq <n>', 'only the record with this seq')
    .option('--since-seq <n>', 'only records after this seq')
    .option('--since <dur>', 'only records from the last <dur> (e.g. 10m)')
    .option('-f, --follow', 'keep streaming until the job ends (or is found crashed)')
    .option('--json', 'one JSON record per line')
    .addHelpText(
      'after',
      `
exit status:
  --follow        0 the job succeeded (or was skipped); 1 it did not succeed: failed, signaled,
                  timed-out, cancelled or crashed (stderr says which, and why)
  without it      0 once the log is printed, whatever the job's status (jobs ls shows it)
  either way      2 usage, 4 no such job, 5 Redis unavailable`,
    );
  logs.action(act(logs, (ref: string, flags) => actions().logsCommand(ref, flags)));

  const cancel = jobs
    .command('cancel')
    .description('cancel a job, or every active job matching all given filters, or --all')
    .argument('[job]', 'job id (or a unique prefix)')
    .option('--hook <hook>', 'jobs of this hook')
    .option('--worktree <path>', 'jobs of this worktree')
    .option('--tag <tag>', 'jobs with this tag')
    .option('--inv <prefix>', 'jobs of invocations starting with this id prefix')
    .option('--older-than <dur>', 'jobs created more than <dur> ago')
    .option('--all', 'every active job')
    .option('--no-wait', 'do not wait for running jobs to end')
    .option('--json', 'print the result as JSON');
  cancel.action(act(cancel, (ref: string | undefined, flags) => actions().cancelCommand(ref, flags)));

  const prune = jobs
    .command('prune')
    .description(
      'apply retention now: remove old finished jobs (metadata and logs), mark stale running jobs crashed',
    )
    .option('--dry-run', 'only say what would be done')
    .option('--retention <dur>', 'override the retention age (beats per-job settings)')
    .option('--keep-last <k>', 'override the per-worktree keep-last floor (beats per-job settings)')
    .option('--json', 'print the decisions as JSON');
  prune.action(act(prune, (flags) => actions().pruneCommand(flags)));
}

export function registerHooksRunCommand(hooks: Command): void {
  const run = hooks
    .command('run')
    .description('fire a hook of .coordbus/hooks.yml (no file or no such hook: nothing to do)')
    .argument('<hook>', 'hook name, e.g. SessionStart')
    .option('--file <path>', 'hooks file (default: the nearest .coordbus/hooks.yml)')
    .option('--worktree <path>', 'worktree to record (default: the project root)')
    .option('--json', 'one JSON line per job');
  run.action(
    act(run, async (hook: string, flags) => {
      const { hooksRunCommand } = require('./hooks-run') as typeof import('./hooks-run');
      return hooksRunCommand(hook, flags);
    }),
  );
}
