import { Writable } from 'node:stream';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT_CODES } from '@coordbus/envelope';
import { runCoord } from './run';

/** Help and version never touch Redis: runCoord answers them before connecting. */
async function coord(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const sink = (to: string[]) =>
    new Writable({
      write(chunk, _enc, cb) {
        to.push(String(chunk));
        cb();
      },
    });
  const code = await runCoord(argv, {
    env: { REDIS_URL: 'redis://127.0.0.1:1' },
    stdout: sink(out),
    stderr: sink(err),
  } as never);
  return { code, stdout: out.join(''), stderr: err.join('') };
}

describe('coord help and version', () => {
  it('coord <op> --help shows that op only, with its usage and the exit codes', async () => {
    const r = await coord('lock', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: coord lock <resource> /);
    expect(r.stdout).toContain('take a lock (held by another: exit 3');
    expect(r.stdout).not.toContain('register');
    expect(r.stdout).toContain('9 kill failed');
    const config = await coord('config', '-h');
    expect(config.stdout).toContain('config get [session-ttl]');
    expect(config.stdout).toContain('config set session-ttl <duration>');
  });

  it('coord --help lists every exit code the commands use, as the README does', async () => {
    const r = await coord('--help');
    expect(r.code).toBe(0);
    const codes = [...r.stdout.matchAll(/\b(\d+) [a-z]/g)].map((m) => Number(m[1]));
    for (const c of new Set(Object.values(EXIT_CODES))) expect(codes).toContain(c);
    const readme = readFileSync(join(__dirname, '..', '..', '..', '..', 'README.md'), 'utf8');
    expect(readme).toContain('6 no match');
    expect(readme).toContain('9 kill failed, 10 too large');
  });

  it('coord --version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', '..', 'package.json'), 'utf8'));
    expect(await coord('--version')).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
  });
});
