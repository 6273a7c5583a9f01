import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '@coordbus/testing';

export const COORD = join(REPO_ROOT, 'bin', 'coord');
export const WRAPPER = join(REPO_ROOT, 'bin', 'coord-with-fanout');
export const COORDBUS = join(REPO_ROOT, 'bin', 'coordbus');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command as a real process (stdin from `input`), with a hard timeout. */
export function run(
  cmd: string,
  args: string[],
  opts: {
    env?: NodeJS.ProcessEnv;
    input?: string;
    cwd?: string;
    timeoutMs?: number;
    onSpawn?: (pid: number) => void;
  } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(cmd, args, {
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd ?? REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `${cmd} ${args.join(' ')} did not finish within ${opts.timeoutMs ?? 20_000} ms\n${stdout}\n${stderr}`,
        ),
      );
    }, opts.timeoutMs ?? 20_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
    if (child.pid) opts.onSpawn?.(child.pid);
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Parses the single JSON document a `--json` run printed. */
export function json<T = Record<string, unknown>>(r: RunResult): T {
  return JSON.parse(r.stdout.trim()) as T;
}
