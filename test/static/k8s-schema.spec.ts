import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { K8sObject, ROOT, find, kustomize } from './helpers';
import { schemaErrors, strictFieldErrors } from './k8s-schemas';

/**
 * Every overlay and every component combination renders with kustomize, and every rendered
 * object validates against the Kubernetes / KEDA / prometheus-operator schemas, offline.
 */
const k8s = (rel: string) => join(ROOT, 'k8s', rel);

/** Component combinations the overlays do not use, rendered from a temporary kustomization. */
const VARIANTS: Record<string, { resources: string[]; components: string[] }> = {
  'base + hpa + archivist-postgres': {
    resources: [k8s('base')],
    components: [k8s('components/hpa'), k8s('components/archivist-postgres')],
  },
  'base + keda (SQLite archivist)': { resources: [k8s('base')], components: [k8s('components/keda')] },
  'base + keda + service-monitor': {
    resources: [k8s('base')],
    components: [k8s('components/keda'), k8s('components/service-monitor')],
  },
  'prod + service-monitor (the opt-in)': {
    resources: [k8s('overlays/prod')],
    components: [k8s('components/service-monitor')],
  },
};

const rendered = new Map<string, K8sObject[]>();
let tmp: string;

beforeAll(() => {
  for (const dir of ['', 'base', 'overlays/dev', 'overlays/prod', 'overlays/cluster'])
    rendered.set(dir || 'k8s/', kustomize(k8s(dir)));
  tmp = mkdtempSync(join(tmpdir(), 'coordbus-kustomize-'));
  for (const [name, v] of Object.entries(VARIANTS)) {
    const dir = join(tmp, name.replace(/[^a-z0-9]+/gi, '-'));
    mkdirSync(dir);
    // kustomize takes only relative paths.
    const rel = (p: string) => `  - ${relative(dir, p)}`;
    const lines = [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      'namespace: coordbus',
      'resources:',
      ...v.resources.map(rel),
    ];
    lines.push('components:', ...v.components.map(rel));
    writeFileSync(join(dir, 'kustomization.yaml'), `${lines.join('\n')}\n`);
    rendered.set(name, kustomize(dir));
  }
}, 60_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('kustomize renders', () => {
  it('`kubectl apply -k k8s/` is the dev overlay', () => {
    const key = (o: K8sObject) => `${o.kind}/${o.metadata.name}`;
    expect(rendered.get('k8s/')!.map(key).sort()).toEqual(rendered.get('overlays/dev')!.map(key).sort());
  });

  it.each(['base', 'overlays/dev', 'overlays/prod', 'overlays/cluster', ...Object.keys(VARIANTS)])(
    '%s renders objects with unique kind/name, all in namespace coordbus',
    (name) => {
      const objects = rendered.get(name)!;
      expect(objects.length).toBeGreaterThan(10);
      const keys = objects.map((o) => `${o.kind}/${o.metadata.name}`);
      expect(new Set(keys).size).toBe(keys.length);
      for (const o of objects) {
        if (o.kind !== 'Namespace')
          expect({ obj: `${o.kind}/${o.metadata.name}`, ns: o.metadata.namespace }).toEqual({
            obj: `${o.kind}/${o.metadata.name}`,
            ns: 'coordbus',
          });
      }
    },
  );
});

describe('schemas (offline)', () => {
  it.each(['overlays/dev', 'overlays/prod', 'overlays/cluster', ...Object.keys(VARIANTS)])(
    'every object of %s validates against its schema',
    (name) => {
      const errors = rendered.get(name)!.flatMap(schemaErrors);
      expect(errors).toEqual([]);
    },
  );

  // One TypeScript program checks every rendered object plus two deliberately broken copies
  // (proving the check can fail): the only errors must be those two.
  it('every rendered object has only known fields of the right types; a misspelt field fails (strict check)', () => {
    const seen = new Map<string, K8sObject>();
    for (const objects of rendered.values()) for (const o of objects) seen.set(JSON.stringify(o), o);
    const deployment = structuredClone(
      find(rendered.get('overlays/prod')!, 'Deployment', 'sentinel-subscriber'),
    );
    const container = deployment.spec.template.spec.containers[0];
    container.livenesProbe = container.livenessProbe;
    deployment.metadata.name = 'broken-deployment';
    const scaled = structuredClone(
      find(rendered.get('overlays/prod')!, 'ScaledObject', 'sentinel-subscriber'),
    );
    scaled.spec.maxReplicas = 3;
    scaled.metadata.name = 'broken-scaledobject';
    const errors = strictFieldErrors([...seen.values(), deployment, scaled]);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(
      /^Deployment\/broken-deployment .*livenesProbe.* does not exist in type 'IContainer'/,
    );
    expect(errors[1]).toMatch(/^ScaledObject\/broken-scaledobject .*maxReplicas.* does not exist/);
  }, 90_000);

  // The validators must be able to fail, or the checks above prove nothing.
  it('the schema check rejects a wrong type and a missing required field', () => {
    const deployment = structuredClone(
      find(rendered.get('overlays/prod')!, 'Deployment', 'fanout-publisher'),
    );
    deployment.spec.replicas = 'two';
    delete deployment.spec.selector;
    const errors = schemaErrors(deployment).join('\n');
    expect(errors).toMatch(/Deployment\/fanout-publisher: \/spec\/replicas must be integer/);
    expect(errors).toMatch(/\/spec must have required property selector/);
    const scaled = structuredClone(find(rendered.get('overlays/prod')!, 'ScaledObject', 'fanout-publisher'));
    scaled.spec.triggers[0].metadata.lagCount = 1000;
    expect(schemaErrors(scaled).join('\n')).toMatch(/\/spec\/triggers\/0\/metadata\/lagCount must be string/);
    expect(schemaErrors({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } })).toEqual([
      expect.stringMatching(/no schema for example.com\/v1\/Widget/),
    ]);
  });
});
