import { Command } from 'commander';
import { EXIT_CODES, toCoordbusError } from '@coordbus/envelope';
import { hookPaths, hooksStatus, installHooks, uninstallHooks } from './installer';

interface HookOpts {
  settings?: string;
  coord?: string;
  coordbus?: string;
  json?: boolean;
}

function run(fn: () => number): void {
  try {
    process.exitCode = fn();
  } catch (err) {
    const e = toCoordbusError(err);
    process.stderr.write(`coordbus hooks: ${e.message}\n`);
    process.exitCode = e.exitCode;
  }
}

function withCommon(cmd: Command): Command {
  return cmd
    .option('--settings <path>', 'Claude Code settings file (default ~/.claude/settings.json)')
    .option('--coord <path>', "coord binary the hooks run (default: this install's bin/coord)")
    .option('--coordbus <path>', "coordbus binary for `hooks run` (default: this install's bin/coordbus)")
    .option('--json', 'print the outcome as JSON');
}

/**
 * `coordbus hooks install|uninstall|status` — agent hooks that keep coord sessions alive
 * (SessionStart registers, PostToolUse heartbeats, throttled, SessionEnd deregisters) and start
 * `coordbus hooks run <Event>` for events named in `.coordbus/hooks.yml`. Returns the `hooks`
 * command (the jobs area adds `hooks run` to it).
 */
export function registerHooksCommands(program: Command): Command {
  const hooks = program.command('hooks').description('agent hooks: install, uninstall, status, run');

  withCommon(hooks.command('install'))
    .description(
      'add the coordbus hooks to a Claude Code settings file (idempotent, keeps everything else, backup in <file>.bak)',
    )
    .action((o: HookOpts) =>
      run(() => {
        const r = installHooks(hookPaths(o.settings, o));
        process.stdout.write(
          o.json
            ? `${JSON.stringify({ changed: r.changed, message: r.message, backup: r.backup ?? null, ...r.paths })}\n`
            : `${r.message}\n`,
        );
        return EXIT_CODES.ok;
      }),
    );

  withCommon(hooks.command('uninstall'))
    .description('remove the coordbus hooks (only those) and the hook script')
    .action((o: HookOpts) =>
      run(() => {
        const r = uninstallHooks(hookPaths(o.settings, o));
        process.stdout.write(
          o.json
            ? `${JSON.stringify({ changed: r.changed, message: r.message, backup: r.backup ?? null })}\n`
            : `${r.message}\n`,
        );
        return EXIT_CODES.ok;
      }),
    );

  withCommon(hooks.command('status'))
    .description('show which coordbus hooks are installed (exit 0 when all are, 4 when not)')
    .action((o: HookOpts) =>
      run(() => {
        const s = hooksStatus(hookPaths(o.settings, o));
        if (o.json) process.stdout.write(`${JSON.stringify(s)}\n`);
        else {
          process.stdout.write(
            `coord hooks: ${s.installed ? 'installed' : 'not installed'} (${s.settings})\n`,
          );
          for (const [event, ok] of Object.entries(s.events))
            process.stdout.write(`  ${ok ? '+' : '-'} ${event}\n`);
          process.stdout.write(`  ${s.script_installed ? '+' : '-'} script ${s.script}\n`);
          process.stdout.write(
            `  ${s.coord_executable ? '+' : '-'} coord ${s.coord}${s.coord_executable ? '' : ' (missing: hooks stay silent no-ops)'}\n`,
          );
        }
        return s.installed ? EXIT_CODES.ok : EXIT_CODES.NotFound;
      }),
    );

  return hooks;
}
