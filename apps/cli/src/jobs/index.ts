import { Command } from 'commander';

/** `coordbus jobs ...` — owned by the job-coordinator issue (#7). */
export function registerJobsCommands(_program: Command): void {}

/** `coordbus hooks run <hook>` — owned by the job-coordinator issue (#7). */
export function registerHooksRunCommand(_hooks: Command): void {}
