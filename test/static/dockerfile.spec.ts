import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, exists } from './helpers';

/**
 * The Dockerfile, read statically (no Docker engine here): a multi-stage build whose slim
 * runtime stage runs as a non-root user, has a HEALTHCHECK and enters through the container
 * entry script; every file it copies from the context exists and is not dockerignored.
 */
interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name: string;
  instructions: Instruction[];
}

/** Splits a Dockerfile into stages of instructions (comments dropped, `\` continuations joined). */
function parseDockerfile(text: string): { args: Instruction[]; stages: Stage[] } {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!current && (line.startsWith('#') || !line)) continue;
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push(current + line);
    current = '';
  }
  const args: Instruction[] = [];
  const stages: Stage[] = [];
  for (const l of logical) {
    const [op, ...rest] = l.split(/\s+/);
    const ins = { op: op.toUpperCase(), args: rest.join(' ') };
    if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      stages.push({ from: m![1], name: m![2] ?? String(stages.length), instructions: [] });
    } else if (stages.length) stages[stages.length - 1].instructions.push(ins);
    else args.push(ins);
  }
  return { args, stages };
}

const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const stage = (name: string) => {
  const s = dockerfile.stages.find((x) => x.name === name);
  if (!s) throw new Error(`no stage ${name}`);
  return s;
};
const runs = (s: Stage) => s.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);

describe('Dockerfile', () => {
  it('builds in stages: deps (with the native toolchain) -> build (npm ci + build + prune) -> slim runtime', () => {
    expect(dockerfile.stages.map((s) => s.name)).toEqual(['deps', 'build', 'runtime']);
    const deps = runs(stage('deps')).join('\n');
    expect(deps).toMatch(/apt-get install .*python3 .*make .*g\+\+/);
    expect(deps).toMatch(/npm ci\b/);
    expect(stage('build').from).toBe('deps');
    expect(runs(stage('build')).join('\n')).toMatch(/npm run build && npm prune --omit=dev/);
    const runtime = stage('runtime');
    expect(runtime.from).toBe('${NODE_IMAGE}');
    // The Node LTS package.json's engines starts at (22), the one the README names.
    expect(dockerfile.args.find((a) => a.op === 'ARG')?.args).toMatch(/^NODE_IMAGE=node:22[\w.-]*-slim$/);
    expect(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).engines.node).toMatch(
      /^>=22\.\d+(\.\d+)?$/,
    );
    expect(runs(runtime).join('\n')).not.toMatch(/g\+\+|make|python3|npm (ci|install)/);
  });

  it('runs the runtime as a numeric non-root user, with a HEALTHCHECK and the container entry point', () => {
    const runtime = stage('runtime').instructions;
    const users = runtime.filter((i) => i.op === 'USER').map((i) => i.args);
    expect(users).toHaveLength(1);
    const [uid] = users[0].split(':');
    expect(Number(uid)).toBeGreaterThan(0);
    const healthcheck = runtime.find((i) => i.op === 'HEALTHCHECK')?.args ?? '';
    expect(healthcheck).toMatch(/CMD \["node", "\/app\/scripts\/container-entry\.js", "healthcheck"\]/);
    const entrypoint = JSON.parse(runtime.find((i) => i.op === 'ENTRYPOINT')!.args) as string[];
    expect(entrypoint).toEqual(['/usr/bin/tini', '--', 'node', '/app/scripts/container-entry.js']);
    expect(runs(stage('runtime')).join('\n')).toMatch(/apt-get install .*tini/);
    // The USER comes after every RUN that needs root.
    const lastRun = runtime.map((i) => i.op).lastIndexOf('RUN');
    expect(runtime.findIndex((i) => i.op === 'USER')).toBeGreaterThan(lastRun);
  });

  it('copies only files that exist and that .dockerignore lets into the context', () => {
    const copies = dockerfile.stages.flatMap((s) =>
      s.instructions.filter((i) => i.op === 'COPY' && !i.args.includes('--from=')),
    );
    expect(copies.length).toBeGreaterThan(3);
    for (const c of copies) {
      const parts = c.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1)) {
        expect({ src, exists: exists(src) }).toEqual({ src, exists: true });
        const top = src.replace(/\/$/, '').split('/')[0];
        expect({ src, ignored: ignore.includes(top) || ignore.includes(src) }).toEqual({
          src,
          ignored: false,
        });
      }
    }
    const fromBuild = stage('runtime').instructions.filter(
      (i) => i.op === 'COPY' && i.args.includes('--from=build'),
    );
    const copied = fromBuild.flatMap((i) => i.args.split(/\s+/).filter((p) => p.startsWith('/app/')));
    for (const needed of ['/app/node_modules', '/app/dist', '/app/bin', '/app/scripts/container-entry.js']) {
      expect(copied).toContain(needed);
    }
  });

  it('has no `# syntax=` line: BuildKit would fetch that frontend image from a registry at build time', () => {
    const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    expect(text.split('\n').filter((l) => /^#\s*syntax\s*=/i.test(l))).toEqual([]);
  });

  it('.dockerignore keeps dependencies, build output, VCS data and secrets out of the context', () => {
    for (const entry of ['.git', 'node_modules', 'dist', '.env', '.coordbus-data'])
      expect(ignore).toContain(entry);
  });
});
