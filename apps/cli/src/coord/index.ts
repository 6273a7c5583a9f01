import { Command } from 'commander';
import { COORD_USAGE, runCoord } from './run';

/**
 * `coordbus coord <op> ...`: the same implementation as `bin/coord` (runCoord), reached through
 * the full CLI. Arguments go through untouched, so flags and exit codes are identical.
 */
export function registerCoordCommands(program: Command): void {
  program
    .command('coord')
    .description(
      'coordination between agent sessions: register, heartbeat, locks, inbox, dispatch (coord --help)',
    )
    .helpOption(false)
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .argument('[args...]', 'coord op and its arguments')
    .addHelpText('after', `\n${COORD_USAGE}`)
    .action(async (args: string[]) => {
      process.exitCode = await runCoord(args, {
        stdout: process.stdout,
        stderr: process.stderr,
        env: process.env,
      });
    });
}
