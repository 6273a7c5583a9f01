import { Command } from 'commander';

/** `coordbus hooks install|uninstall|status` — owned by the coord issue (#3). Returns the `hooks` command. */
export function registerHooksCommands(program: Command): Command {
  return program.command('hooks').description('agent hooks: install, uninstall, status, run');
}
