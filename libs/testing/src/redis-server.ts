import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Asks the kernel for a free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** True when `redis-server` is on PATH. */
export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Resolves true once something answers PING with PONG at host:port. */
export function pingRedis(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = new Socket();
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('error', () => done(false));
    sock.connect(port, host, () => sock.write('PING\r\n'));
    sock.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

export interface RedisServerOptions {
  port?: number;
  /** AOF persistence, so a restart keeps the data (default false: nothing on disk). */
  appendonly?: boolean;
  /** Extra `redis-server` arguments, e.g. `['--cluster-enabled', 'yes']`. */
  args?: string[];
}

/**
 * A `redis-server` owned by one test: on its own port and directory, so the test can stop,
 * SIGKILL or restart it without touching anyone else's Redis.
 */
export class TestRedisServer {
  private child?: ChildProcess;
  readonly dir: string;
  port = 0;

  constructor(private readonly options: RedisServerOptions = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'coordbus-redis-'));
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<this> {
    if (!this.port) this.port = this.options.port ?? (await freePort());
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      this.dir,
      '--save',
      '',
      '--appendonly',
      this.options.appendonly ? 'yes' : 'no',
      '--appendfsync',
      'everysec',
      '--daemonize',
      'no',
      '--loglevel',
      'warning',
      ...(this.options.args ?? []),
    ];
    this.child = spawn('redis-server', args, { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(await pingRedis('127.0.0.1', this.port))) {
      if (this.child.exitCode !== null)
        throw new Error(`redis-server exited with ${this.child.exitCode} on port ${this.port}`);
      if (Date.now() > deadline)
        throw new Error(`redis-server did not answer on port ${this.port} within 10 s`);
      await new Promise((r) => setTimeout(r, 25));
    }
    return this;
  }

  /** Stops the server with `signal` (SIGTERM: clean, with AOF fsync; SIGKILL: a crash). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    await exited;
  }

  /** Stops then starts again on the same port and directory (AOF data survives when enabled). */
  async restart(signal: NodeJS.Signals = 'SIGTERM', downMs = 0): Promise<void> {
    await this.stop(signal);
    if (downMs) await new Promise((r) => setTimeout(r, downMs));
    await this.start();
  }

  async dispose(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
