import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Var, VARIABLE_SECTIONS } from './variables';

const ROOT = join(__dirname, '..', '..', '..');

/**
 * Variables read as they are, on purpose: the operating system's and libpq's conventions (not
 * coordbus settings), a marker the container entry sets for the CLI module, and a removed
 * variable whose mere presence is refused at start.
 */
const NOT_SETTINGS: Record<string, string> = {
  HOME: "the job's base environment",
  PATH: "the job's base environment",
  TZ: 'the local time the headroom log is written in',
  USER: 'libpq default user',
  PGUSER: 'libpq default user',
  COORDBUS_CLI_MAIN: 'set by scripts/container-entry.js to run the CLI module',
  ARCHIVIST_VALIDATE: 'removed; setting it is a start-up error',
};

/** Production sources of apps/ and libs/ (no specs, tests or the test-only lib). */
function sources(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const full = join(dir, name);
      if (statSync(full).isDirectory()) {
        if (!['node_modules', 'test', '__fixtures__'].includes(name)) walk(full);
      } else if (name.endsWith('.ts') && !/\.(spec|test|d)\.ts$/.test(name)) out.push(full);
    }
  };
  for (const top of ['apps', 'libs']) {
    for (const pkg of readdirSync(join(ROOT, top))) {
      if (top === 'libs' && pkg === 'testing') continue;
      if (existsSync(join(ROOT, top, pkg, 'src'))) walk(join(ROOT, top, pkg, 'src'));
    }
  }
  return out;
}

/** Every `<env>.NAME` / `<env>['NAME']` read of an upper-case variable name, by file. */
function rawReads(): { file: string; name: string }[] {
  const found: { file: string; name: string }[] = [];
  const patterns = [
    /\b(?:process\.env|env|vars|envVars|from)\.([A-Z][A-Z0-9_]+)\b/g,
    /\b(?:process\.env|env|vars|envVars)\[\s*['"`]([A-Z][A-Z0-9_]+)['"`]\s*\]/g,
  ];
  for (const file of sources()) {
    const text = readFileSync(file, 'utf8');
    for (const re of patterns)
      for (const m of text.matchAll(re)) found.push({ file: relative(ROOT, file), name: m[1] });
  }
  return found;
}

describe('every environment variable is defined once (variables.ts)', () => {
  const defined = new Map<string, Var>();
  for (const section of VARIABLE_SECTIONS) {
    for (const v of Object.values(section.vars)) {
      const seen = defined.get(v.name);
      // One definition: a variable listed in two tables is the same object in both.
      expect({ name: v.name, sameDefinition: seen === undefined || seen === v }).toEqual({
        name: v.name,
        sameDefinition: true,
      });
      defined.set(v.name, v);
    }
  }

  it('apps and libs read no variable past its definition (EnvReader.get / readVar)', () => {
    const raw = rawReads().filter((r) => !(r.name in NOT_SETTINGS));
    expect(raw).toEqual([]);
  });

  it('the scan sees a raw read (so the check above can fail)', () => {
    const re = /\b(?:process\.env|env|vars|envVars|from)\.([A-Z][A-Z0-9_]+)\b/g;
    expect([...'const x = env.SOME_VAR;'.matchAll(re)].map((m) => m[1])).toEqual(['SOME_VAR']);
    expect(rawReads().some((r) => r.name === 'TZ')).toBe(true);
  });

  it('the exceptions are not coordbus settings', () => {
    for (const name of Object.keys(NOT_SETTINGS))
      expect({ name, defined: defined.has(name) }).toEqual({ name, defined: false });
  });
});
