import { Command, InvalidArgumentError } from 'commander';
import { runEvents } from './events';
import { runReplay, runTail } from './live';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

/** Runs a following command until Ctrl-C or SIGTERM, which end it cleanly (its exit code stands). */
function untilInterrupted(run: (signal: AbortSignal) => Promise<number>): Promise<number> {
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return run(ac.signal);
}

/** `coordbus tail` and `coordbus replay`: the live coord fan-out and its replay stream (and, with --archive, the archive). */
export function registerTailCommands(program: Command): void {
  program
    .command('tail')
    .description('print the live coord fan-out (logs.coord.*), one line per envelope, until Ctrl-C')
    .option('--level <level>', 'only this level: info, warn or error')
    .option('--op <op>', 'only this coord op (register, lock, ...)')
    .option('--session <id>', 'only this session')
    .option('--json', 'one envelope per line as JSON')
    .action(async (opts: { level?: string; op?: string; session?: string; json?: boolean }) => {
      process.exitCode = await untilInterrupted((signal) => runTail(opts, process.stdout, { signal }));
    });

  program
    .command('events')
    .description(
      "the typed coord event stream, oldest first (registrations, locks, culls, orders); --observations: the sentinel's",
    )
    .option('--follow', 'then print new events as they land, until Ctrl-C')
    .option('--session <id>', 'only events of this session')
    .option('--kind <kind>', 'only this kind (lock.release) or family (lock, session, dispatch, inbox)')
    .option('--count <n>', 'how many past events (default 50)', positiveInt)
    .option('--observations', "read the sentinel's observations (one-line summaries) instead")
    .option('--json', 'one record per line as JSON')
    .action(
      async (opts: {
        follow?: boolean;
        session?: string;
        kind?: string;
        count?: number;
        observations?: boolean;
        json?: boolean;
      }) => {
        process.exitCode = await untilInterrupted((signal) => runEvents(opts, process.stdout, { signal }));
      },
    );

  program
    .command('replay')
    .description(
      'print the last coord op envelopes (logs:stream:coord), oldest first like tail; --archive reads the archive',
    )
    .option(
      '--count <n>',
      'how many of the newest envelopes (default 20; --archive: the whole window)',
      positiveInt,
    )
    .option('--reverse', 'newest first (not with --follow)')
    .option('--json', 'one envelope per line as JSON')
    .option('--op <op>', 'only this coord op')
    .option('--session <id>', 'only this session')
    .option('--archive', 'read the telemetry archive (any age) instead of the capped replay stream')
    .option('--since <time>', 'with --archive: from this RFC 3339 time or duration ago (15m, 2h, 7d)')
    .option('--until <time>', 'with --archive: up to this time')
    .option('--follow', 'with --archive: continue live after the archived part')
    .action(
      async (opts: {
        count?: number;
        json?: boolean;
        op?: string;
        session?: string;
        reverse?: boolean;
        archive?: boolean;
        since?: string;
        until?: string;
        follow?: boolean;
      }) => {
        if (!opts.archive) {
          const archiveOnly = (['since', 'until', 'follow'] as const).filter((k) => opts[k] !== undefined);
          if (archiveOnly.length) {
            process.stderr.write(
              `coordbus replay: ${archiveOnly.map((k) => `--${k}`).join(', ')} need --archive\n`,
            );
            process.exitCode = 2;
            return;
          }
          process.exitCode = await runReplay(opts, process.stdout);
          return;
        }
        // Loaded only when asked for: the archive client is the archivist's code.
        const { runArchiveReplay } = await import('../archive/replay');
        process.exitCode = await runArchiveReplay(
          {
            since: opts.since,
            until: opts.until,
            session: opts.session,
            op: opts.op,
            json: opts.json,
            follow: opts.follow,
            count: opts.count,
            reverse: opts.reverse,
          },
          process.stdout,
        );
      },
    );
}
