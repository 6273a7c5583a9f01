import { Command } from 'commander';

/** `coordbus coord <op>` — owned by the coord issue (#3). */
export function registerCoordCommands(_program: Command): void {}
