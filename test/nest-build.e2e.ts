import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import Redis from 'ioredis';
import { cleanupNamespace, testNamespace, testRedisUrl, waitFor } from '@coordbus/testing';

/**
 * The Nest CLI beside `npm run build` (nest-cli.json: a monorepo of every app and lib, the SWC
 * builder): `nest build <app>` emits the app and every lib it requires, with their Lua, sh and
 * JSON files, into dist/nest (never the dist/ that `npm run build` ships), and `nest start <app>`
 * runs the built output.
 */
const ROOT = join(__dirname, '..');
const NEST = join(ROOT, 'node_modules', '.bin', 'nest');
const OUT = join(ROOT, 'dist', 'nest');

interface Project {
  type: 'application' | 'library';
  root: string;
  sourceRoot: string;
  entryFile: string;
}
const config = JSON.parse(readFileSync(join(ROOT, 'nest-cli.json'), 'utf8')) as {
  monorepo: boolean;
  projects: Record<string, Project>;
};

const dirs = (top: string) =>
  readdirSync(join(ROOT, top)).filter((d) => statSync(join(ROOT, top, d)).isDirectory());
const APPS = dirs('apps').filter((a) => existsSync(join(ROOT, 'apps', a, 'src', 'main.ts')));
const LIBS = dirs('libs');

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(NEST, args, { cwd: ROOT, env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** The libs an app's sources import (`@coordbus/<lib>`), specs aside. */
function importedLibs(app: string): string[] {
  const found = new Set<string>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const full = join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith('.ts') && !name.endsWith('.spec.ts'))
        for (const m of readFileSync(full, 'utf8').matchAll(/from '@coordbus\/([a-z-]+)'/g)) found.add(m[1]);
    }
  };
  walk(join(ROOT, 'apps', app, 'src'));
  return [...found].sort();
}

/**
 * Follows every relative `require` from the built entry file, as Node would: each must resolve to
 * an emitted file. Returns the files reached (so a lib missing from the output fails here, and a
 * lib reached shows its path).
 */
function reachable(entry: string): Set<string> {
  const seen = new Set<string>([entry]);
  const todo = [entry];
  const unresolved: string[] = [];
  while (todo.length) {
    const file = todo.pop()!;
    // Lazy requires in the sources keep their own quotes.
    for (const m of readFileSync(file, 'utf8').matchAll(/require\((["'])(\.{1,2}\/[^"']+)\1\)/g)) {
      let target: string | undefined;
      try {
        target = require.resolve(m[2], { paths: [dirname(file)] });
      } catch {
        unresolved.push(`${relative(OUT, file)} requires ${m[2]}`);
        continue;
      }
      if (!seen.has(target) && target.endsWith('.js')) {
        seen.add(target);
        todo.push(target);
      }
    }
  }
  expect(unresolved).toEqual([]);
  return seen;
}

describe('nest-cli.json and the Nest CLI (SWC builder)', () => {
  it('is a monorepo with every app and every lib as a project', () => {
    expect(config.monorepo).toBe(true);
    const expected: Record<string, Project> = {};
    for (const app of APPS)
      expected[app] = {
        type: 'application',
        root: `apps/${app}`,
        sourceRoot: `apps/${app}/src`,
        entryFile: 'main',
      };
    for (const lib of LIBS)
      expected[lib] = {
        type: 'library',
        root: `libs/${lib}`,
        sourceRoot: `libs/${lib}/src`,
        entryFile: 'index',
      };
    expect(config.projects).toEqual(expected);
  });

  it.each(APPS)(
    '`nest build %s` emits the app, every lib it requires and their Lua/sh/JSON files into dist/nest',
    async (app) => {
      const r = await run(['build', app]);
      expect({ code: r.code, out: r.code === 0 ? '' : r.out }).toEqual({ code: 0, out: '' });
      const entry = join(OUT, 'apps', app, 'src', 'main.js');
      expect(existsSync(entry)).toBe(true);
      const files = reachable(entry);
      const libsReached = new Set(
        [...files].map((f) => /\/libs\/([a-z-]+)\/src\//.exec(relative(ROOT, f))?.[1]).filter(Boolean),
      );
      for (const lib of importedLibs(app))
        expect({ app, lib, emitted: libsReached.has(lib) }).toEqual({ app, lib, emitted: true });
      // The run-time files beside the code: every Lua command of the app and of the libs it reached.
      for (const pkg of [`apps/${app}`, ...[...libsReached].map((l) => `libs/${l}`)]) {
        const commands = join(ROOT, pkg, 'src', 'commands');
        if (!existsSync(commands)) continue;
        for (const lua of readdirSync(commands).filter((f) => f.endsWith('.lua')))
          expect({
            lua: `${pkg}/src/commands/${lua}`,
            copied: existsSync(join(OUT, pkg, 'src', 'commands', lua)),
          }).toEqual({
            lua: `${pkg}/src/commands/${lua}`,
            copied: true,
          });
      }
      expect(existsSync(join(OUT, 'libs', 'config', 'src', 'service-table.json'))).toBe(true);
    },
    300_000,
  );

  it('`nest start fanout-publisher` runs the built app until /readyz answers 200', async () => {
    const ns = testNamespace('nest-start');
    const redis = new Redis(testRedisUrl());
    const child: ChildProcess = spawn(NEST, ['start', 'fanout-publisher'], {
      cwd: ROOT,
      detached: true,
      env: { ...process.env, HTTP_PORT: '0', HTTP_HOST: '127.0.0.1', COORDBUS_NAMESPACE: ns },
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    try {
      // Built, then started: its start line names its HTTP address (HTTP_PORT 0 picks one).
      const url = await waitFor(
        () => /"http":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out)?.[1],
        `the started line of fanout-publisher (output so far: ${out.slice(-500)})`,
        240_000,
        250,
      );
      await waitFor(
        () => fetch(`${url}/readyz`).then((r) => r.status === 200),
        `${url}/readyz 200`,
        60_000,
        250,
      );
      // It runs the dist/nest output, not the dist/ of `npm run build`.
      expect(out).toMatch(/Successfully compiled: \d+ files with swc/);
    } finally {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        /* already gone */
      }
      await cleanupNamespace(redis, ns);
      redis.disconnect();
    }
  }, 300_000);
});
