import { ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The repository root (libs/testing/src -> ../../..). */
export const REPO_ROOT = resolve(__dirname, '..', '..', '..');

export interface ServiceProcess {
  child: ChildProcess;
  /** Base URL of the service's HTTP listener, read from its start log line. */
  url: string;
  /** Every stdout/stderr line so far (JSON logs). */
  lines: string[];
  /** Sends `signal` and resolves with the exit code (or signal name) once it exits. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/**
 * Starts a BUILT service (`node dist/apps/<name>/main.js`) as a real process with HTTP_PORT=0
 * and resolves once it logs its start line (which carries the bound URL).
 */
export async function startService(
  name: string,
  env: NodeJS.ProcessEnv,
  timeoutMs = 20_000,
): Promise<ServiceProcess> {
  const main = join(REPO_ROOT, 'dist', 'apps', name, 'main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build first`);
  const child = spawn(process.execPath, [main], {
    cwd: REPO_ROOT,
    env: { ...process.env, HTTP_PORT: '0', HTTP_HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exited = new Promise<number | string>((r) => child.once('exit', (code, sig) => r(code ?? sig ?? -1)));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start within ${timeoutMs} ms:\n${lines.join('\n')}`)),
      timeoutMs,
    );
    const onLine = (line: string) => {
      lines.push(line);
      try {
        const rec = JSON.parse(line) as { http?: string; msg?: string };
        if (rec.http && rec.msg?.endsWith('started')) {
          clearTimeout(timer);
          resolveUrl(rec.http.replace('[::1]', '127.0.0.1'));
        }
      } catch {
        /* not JSON: keep it in lines for the error message */
      }
    };
    for (const stream of [child.stdout!, child.stderr!]) {
      let buf = '';
      stream.on('data', (d: Buffer) => {
        buf += d.toString();
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          onLine(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
    }
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before starting:\n${lines.join('\n')}`));
    });
  });
  return {
    child,
    url,
    lines,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Runs a built service expecting it to exit (bad config); resolves with its exit code and output. */
export function runServiceToExit(
  name: string,
  env: NodeJS.ProcessEnv,
  timeoutMs = 15_000,
): Promise<{ code: number | null; output: string }> {
  const main = join(REPO_ROOT, 'dist', 'apps', name, 'main.js');
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [main], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not exit within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolveRun({ code, output });
    });
  });
}
