import { Command, CommanderError } from 'commander';
import { EXIT_CODES, toCoordbusError } from '@coordbus/envelope';
import { registerConfigCommands, registerCoordCommands } from './coord';
import { registerHooksCommands } from './hooks';
import { registerDeadCommands } from './dead';
import { registerTailCommands } from './tail';
import { registerJobsCommands, registerHooksRunCommand } from './jobs';
import { coordbusVersion, EXIT_CODES_HELP } from './version';

/**
 * `coordbus`: one CLI for every capability. Each area registers its own commands; the `coord`
 * hot path has its own entry point (bin/coord) that never loads this file.
 */
export function buildProgram(): Command {
  const program = new Command('coordbus')
    .description('coordination and observability bus for AI coding-agent sessions')
    .version(coordbusVersion(), '-V, --version', 'print the version')
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .showHelpAfterError()
    .exitOverride();
  registerCoordCommands(program);
  registerConfigCommands(program);
  const hooks = registerHooksCommands(program);
  registerHooksRunCommand(hooks);
  registerTailCommands(program);
  registerJobsCommands(program);
  registerDeadCommands(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; every other commander error is a usage error.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_CODES.usage;
      return;
    }
    const e = toCoordbusError(err);
    process.stderr.write(`coordbus: ${e.code}: ${e.message}\n`);
    process.exitCode = e.exitCode;
  }
}

if (require.main === module || process.env.COORDBUS_CLI_MAIN === '1') void main(process.argv);
