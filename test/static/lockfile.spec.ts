import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import semver from 'semver';
import { ROOT } from './helpers';

/**
 * package-lock.json agrees with package.json the way `npm ci` (CI and the Dockerfile) checks it:
 * `npm ci --dry-run` on a copy of the two files, offline, refuses a lock that lacks a declared
 * dependency or another platform's optional package. And the Node version package.json's engines
 * starts at is one every locked package accepts, so a fresh install with it prints no EBADENGINE.
 */
const execFileP = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

interface LockEntry {
  version?: string;
  engines?: { node?: string } | string[];
  optionalDependencies?: Record<string, string>;
}
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string };
};
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, LockEntry>;
};

/** Runs `npm ci --dry-run` in a temporary copy holding only these two files; resolves to npm's exit. */
async function npmCiDryRun(lockText: string): Promise<{ code: number; output: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'coordbus-lock-'));
  try {
    copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
    writeFileSync(join(dir, 'package-lock.json'), lockText);
    const args = ['ci', '--dry-run', '--ignore-scripts', '--offline', '--no-audit', '--no-fund'];
    try {
      const { stdout, stderr } = await execFileP(npm, args, { cwd: dir, maxBuffer: 16 << 20 });
      return { code: 0, output: stdout + stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : 1, output: `${e.stdout}${e.stderr}` };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('package-lock.json', () => {
  it('is in sync with package.json: npm ci accepts it', async () => {
    const { code, output } = await npmCiDryRun(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
    expect({ code, errors: output.split('\n').filter((l) => l.startsWith('npm error')) }).toEqual({
      code: 0,
      errors: [],
    });
  }, 60_000);

  it('and npm ci refuses it once another platform optional package is dropped (the check can fail)', async () => {
    const broken = JSON.parse(JSON.stringify(lock)) as typeof lock;
    const optional = Object.keys(broken.packages['node_modules/@swc/core'].optionalDependencies ?? {});
    expect(optional.length).toBeGreaterThan(5);
    const foreign = optional.find((n) => n.includes('darwin'))!;
    delete broken.packages[`node_modules/${foreign}`];
    const { code, output } = await npmCiDryRun(JSON.stringify(broken, null, 2));
    expect(code).not.toBe(0);
    expect(output).toContain(`Missing: ${foreign}`);
  }, 60_000);

  it('holds every optional package of @swc/core and esbuild, for every platform', () => {
    for (const parent of ['node_modules/@swc/core', 'node_modules/esbuild']) {
      for (const name of Object.keys(lock.packages[parent].optionalDependencies ?? {}))
        expect({ name, locked: `node_modules/${name}` in lock.packages }).toEqual({ name, locked: true });
    }
  });

  it("every locked package accepts the Node version engines starts at (no EBADENGINE with the README's Node)", () => {
    const min = semver.minVersion(pkg.engines.node)!.version;
    expect(semver.major(min)).toBeGreaterThanOrEqual(22);
    const refusing = Object.entries(lock.packages)
      .map(([path, e]) => [path, Array.isArray(e.engines) ? undefined : e.engines?.node] as const)
      .filter(([, range]) => range && !semver.satisfies(min, range))
      .map(([path, range]) => `${path} (${range})`);
    expect(refusing).toEqual([]);
    expect(lock.packages[''].engines).toEqual(pkg.engines);
  });
});
