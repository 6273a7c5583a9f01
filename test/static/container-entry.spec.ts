import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, serviceTable } from './helpers';

/**
 * scripts/container-entry.js, the image's entry point, run as a real process. COORDBUS_APP_ROOT
 * points it at a stand-in dist/ whose apps print what they were started with, so dispatch is
 * tested without a build; the healthcheck talks to a real HTTP server.
 */
const ENTRY = join(ROOT, 'scripts', 'container-entry.js');
let appRoot: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ENTRY, ...args], {
      env: { PATH: process.env.PATH ?? '', COORDBUS_APP_ROOT: appRoot, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A stand-in app: prints its argv (after node and the script) and the env it was given. */
const STANDIN = `process.stdout.write(JSON.stringify({ app: __dirname.split('/').pop(), argv: process.argv.slice(1), service: process.env.COORDBUS_SERVICE, cli: process.env.COORDBUS_CLI_MAIN }));`;

beforeAll(() => {
  appRoot = mkdtempSync(join(tmpdir(), 'coordbus-entry-'));
  for (const app of [...serviceTable().map((s) => s.name), 'cli']) {
    mkdirSync(join(appRoot, 'dist', 'apps', app), { recursive: true });
    writeFileSync(join(appRoot, 'dist', 'apps', app, 'main.js'), STANDIN);
  }
});

afterAll(() => rmSync(appRoot, { recursive: true, force: true }));

describe('container entry point', () => {
  it('runs the service named by COORDBUS_SERVICE, in-process, passing flags through', async () => {
    const r = await run(['--path', '/var/log/x.log'], { COORDBUS_SERVICE: 'log-tailer' });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.app).toBe('log-tailer');
    expect(out.argv).toEqual([
      join(appRoot, 'dist', 'apps', 'log-tailer', 'main.js'),
      '--path',
      '/var/log/x.log',
    ]);
  });

  it('runs the service named by the first argument and exports it as COORDBUS_SERVICE', async () => {
    const r = await run(['sentinel-subscriber']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      app: 'sentinel-subscriber',
      service: 'sentinel-subscriber',
    });
  });

  it('runs the coordbus CLI with its arguments', async () => {
    const r = await run(['cli', 'jobs', 'list', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      app: 'cli',
      argv: ['coordbus', 'jobs', 'list', '--json'],
      cli: '1',
    });
  });

  it('lists the services it can run with their default ports', async () => {
    const r = await run(['list']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(serviceTable().map((s) => `${s.name}\t${s.port}`));
  });

  it('refuses an unknown service or no service with usage (exit 2), naming what it can run', async () => {
    const unknown = await run(['sentinel']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown service "sentinel"/);
    expect(unknown.stderr).toContain('sentinel-subscriber');
    const none = await run([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no service given/);
  });

  it('exits 1 when the image lacks the app it was asked for', async () => {
    rmSync(join(appRoot, 'dist', 'apps', 'job-coordinator'), { recursive: true });
    const r = await run([], { COORDBUS_SERVICE: 'job-coordinator' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/dist\/apps\/job-coordinator\/main\.js is missing/);
  });

  describe('healthcheck', () => {
    let server: Server;
    let status = 200;
    let live = 200;
    let port: number;

    beforeAll(async () => {
      server = createServer((req, res) => {
        res.statusCode = req.url === '/readyz' ? status : req.url === '/healthz' ? live : 404;
        res.end();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as AddressInfo).port;
    });

    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    it('exits 0 when /readyz on HTTP_PORT answers 200, 1 when it answers otherwise (alive is not enough)', async () => {
      status = 200;
      expect((await run(['healthcheck'], { HTTP_PORT: String(port) })).code).toBe(0);
      status = 503;
      const bad = await run(['healthcheck'], { HTTP_PORT: String(port) });
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/\/readyz on port \d+ answered 503/);
    });

    it('probes /healthz with --live', async () => {
      status = 503;
      live = 200;
      expect((await run(['healthcheck', '--live'], { HTTP_PORT: String(port) })).code).toBe(0);
      live = 500;
      const bad = await run(['healthcheck', '--live'], { HTTP_PORT: String(port) });
      expect(bad.stderr).toMatch(/\/healthz on port \d+ answered 500/);
      live = 200;
      status = 200;
    });

    it('exits 1 when nothing listens', async () => {
      const closed = createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
      const free = (closed.address() as AddressInfo).port;
      await new Promise<void>((r) => closed.close(() => r()));
      const r = await run(['healthcheck'], { HTTP_PORT: String(free) });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/ECONNREFUSED/);
    });

    it("uses the service's default port when HTTP_PORT is unset, and needs one of the two", async () => {
      const r = await run(['healthcheck'], { COORDBUS_SERVICE: 'sentinel-subscriber' });
      // Exit 0 is only possible if something answered on 8082 (a local service may run there); else the error names 8082.
      expect(r.stderr + (r.code === 0 ? 'port 8082' : '')).toMatch(/port 8082/);
      const none = await run(['healthcheck']);
      expect(none.code).toBe(1);
      expect(none.stderr).toMatch(/needs HTTP_PORT or COORDBUS_SERVICE/);
    });
  });
});
