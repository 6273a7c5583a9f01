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

/**
 * `coordbus config get|set <setting>`: deployment settings stored with the coord state in Redis
 * (`coord config ...`, same implementation and exit codes).
 */
export function registerConfigCommands(program: Command): void {
  program
    .command('config')
    .description('deployment settings stored in Redis: config get [session-ttl], config set session-ttl 300s')
    .helpOption(false)
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .argument('[args...]', 'get [setting] | set <setting> <value>')
    .action(async (args: string[]) => {
      process.exitCode = await runCoord(['config', ...args], {
        stdout: process.stdout,
        stderr: process.stderr,
        env: process.env,
      });
    });
}
