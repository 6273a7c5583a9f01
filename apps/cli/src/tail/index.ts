import { Command } from 'commander';

/** `coordbus tail` and `coordbus replay` — owned by the coord issue (#3). */
export function registerTailCommands(_program: Command): void {}
