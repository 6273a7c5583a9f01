import { spawn } from 'node:child_process';
import { constants, homedir } from 'node:os';
import { keyspaceFromEnv } from '@coordbus/envelope';
import { COORD_VARS, SHARED_VARS } from '@coordbus/config';
import { buildEnvelope, coordVar, FanoutPublisher, opContext, sessionIdFrom } from '@coordbus/coord';

const FORWARDED: NodeJS.Signals[] = [
  'SIGINT',
  'SIGTERM',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGWINCH',
];

/** `COORD_BIN`, default `~/.claude/bin/coord` (a leading `~` is expanded). */
export function coordBin(env: NodeJS.ProcessEnv): string {
  const bin = coordVar(env, COORD_VARS.COORD_BIN);
  return bin.startsWith('~/') ? `${homedir()}${bin.slice(1)}` : bin;
}

/**
 * `coord-with-fanout <args>`: runs `COORD_BIN <args>` with stdin/stdout/stderr passed through
 * untouched and signals forwarded, and publishes seed 000's pre/post op envelopes around it.
 * The exit status is always the wrapped binary's (a signal death is re-raised on the wrapper, so
 * the caller sees the same wait status). Publishing is fire-and-forget with the
 * LOGS_COORD_REDIS_TIMEOUT bound; LOGS_COORD_DISABLED=1 publishes nothing.
 */
export async function runWrapper(
  argv: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; signal?: NodeJS.Signals }> {
  const session = sessionIdFrom(env).id;
  const ctx = opContext(argv, session);
  let fan: FanoutPublisher | undefined;
  try {
    fan = FanoutPublisher.fromEnv(env, coordVar(env, SHARED_VARS.REDIS_URL), keyspaceFromEnv(env));
  } catch (err) {
    // A bad COORDBUS_NAMESPACE or REDIS_URL must not stop the wrapped coord: publish nothing.
    process.stderr.write(`coord-with-fanout: not publishing: ${(err as Error).message}\n`);
  }
  if (ctx) fan?.publish(buildEnvelope(ctx, 'pre'));
  const started = process.hrtime.bigint();
  const bin = coordBin(env);
  const outcome = await new Promise<{ code: number; signal?: NodeJS.Signals }>((resolve) => {
    const child = spawn(bin, argv, { stdio: 'inherit', env });
    const forward = (sig: NodeJS.Signals) => () => {
      try {
        child.kill(sig);
      } catch {
        /* already gone */
      }
    };
    const handlers = FORWARDED.map((sig) => [sig, forward(sig)] as const);
    handlers.forEach(([sig, h]) => process.on(sig, h));
    const done = (o: { code: number; signal?: NodeJS.Signals }) => {
      handlers.forEach(([sig, h]) => process.off(sig, h));
      resolve(o);
    };
    child.once('error', (err: NodeJS.ErrnoException) => {
      process.stderr.write(`coord-with-fanout: cannot run ${bin}: ${err.message}\n`);
      done({ code: err.code === 'ENOENT' ? 127 : 126 });
    });
    child.once('exit', (code, signal) => {
      if (signal) done({ code: 128 + (constants.signals[signal] ?? 0), signal });
      else done({ code: code ?? 1 });
    });
  });
  if (ctx && fan) {
    fan.publish(
      buildEnvelope(ctx, 'post', {
        durationMs: Number(process.hrtime.bigint() - started) / 1e6,
        exitCode: outcome.code,
      }),
    );
    await fan.flush();
  }
  return outcome;
}

/** `bin/coord-with-fanout` entry. */
export function main(): void {
  runWrapper(process.argv.slice(2), process.env).then(
    ({ code, signal }) => {
      if (signal && signal !== 'SIGWINCH') {
        // Die the way the wrapped binary died.
        process.removeAllListeners(signal);
        process.kill(process.pid, signal);
        return;
      }
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`coord-with-fanout: internal error: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
