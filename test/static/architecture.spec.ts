import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * ARCHITECTURE.md's layer diagram is drawn from the code: every `│ <package> → <libs>` line must
 * list exactly the libs that package's sources import, and a lib may import only libs drawn
 * below it.
 */
const ROOT = join(__dirname, '..', '..');

type Layer = Map<string, string[]>;

/** The `apps` and `libs` sections of the diagram, in drawing order. */
function drawn(): { apps: Layer; libs: Layer } {
  const doc = readFileSync(join(ROOT, 'ARCHITECTURE.md'), 'utf8');
  const block = /## Layers\n\n```\n([\s\S]*?)\n```/.exec(doc)?.[1] ?? '';
  const out = { apps: new Map(), libs: new Map() } as { apps: Layer; libs: Layer };
  let section: Layer | undefined;
  for (const line of block.split('\n')) {
    if (/^ apps ──/.test(line)) section = out.apps;
    else if (/^ libs ──/.test(line)) section = out.libs;
    const m = /^ │ ([a-z][a-z-]*)(?: +→ ([a-z -]+?))? *(?:│|$)/.exec(line);
    if (section && m) section.set(m[1], m[2] ? m[2].split(/ +/) : []);
  }
  return out;
}

/** What a package's sources import from `@coordbus/*` (specs and per-package tests aside). */
function imported(dir: string, self: string): string[] {
  const found = new Set<string>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith('.ts') && !/\.(spec|test)\.ts$/.test(name)) {
        const text = readFileSync(full, 'utf8');
        for (const m of text.matchAll(/(?:from |import\(|require\()'@coordbus\/([a-z-]+)'/g)) found.add(m[1]);
      }
    }
  };
  walk(join(dir, 'src'));
  found.delete(self);
  return [...found].sort();
}

const packages = (top: string) =>
  readdirSync(join(ROOT, top)).filter((d) => statSync(join(ROOT, top, d)).isDirectory());

describe('ARCHITECTURE.md layer diagram', () => {
  const { apps, libs } = drawn();

  it('draws every app and every lib', () => {
    expect([...apps.keys()].sort()).toEqual(packages('apps').sort());
    expect([...libs.keys()].sort()).toEqual(packages('libs').sort());
  });

  it.each(
    packages('apps')
      .map((a) => ['apps', a])
      .concat(packages('libs').map((l) => ['libs', l])),
  )('%s/%s: the drawn imports are the real ones', (top, name) => {
    const layer = top === 'apps' ? apps : libs;
    expect({ name, imports: [...(layer.get(name) ?? [])].sort() }).toEqual({
      name,
      imports: imported(join(ROOT, top, name), name),
    });
  });

  it('draws each lib above every lib it imports (no cycles, one direction)', () => {
    const order = [...libs.keys()];
    for (const [lib, deps] of libs)
      for (const dep of deps)
        expect({ lib, dep, below: order.indexOf(dep) > order.indexOf(lib) }).toEqual({
          lib,
          dep,
          below: true,
        });
  });

  it('reads a drawn line as it is written (so a wrong drawing fails above)', () => {
    const m = /^ │ ([a-z][a-z-]*)(?: +→ ([a-z -]+?))? *(?:│|$)/.exec(
      ' │ coord          → config envelope lua   │ x',
    );
    expect([m?.[1], m?.[2]]).toEqual(['coord', 'config envelope lua']);
    expect(libs.get('config')).toEqual([]);
  });
});
