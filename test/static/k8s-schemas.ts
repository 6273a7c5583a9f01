import * as ts from 'typescript';
import type { K8sObject } from './helpers';

/**
 * Offline schema validation of rendered Kubernetes objects, from npm packages (no cluster, no
 * network):
 *
 * 1. `kubernetes-models` (Kubernetes 1.27 OpenAPI), `@kubernetes-models/keda` (KEDA's CRDs) and
 *    `@kubernetes-models/prometheus-operator` (its CRDs) ship each schema compiled by Ajv into a
 *    standalone validator: types, required fields, formats, enums.
 * 2. Those schemas, like the OpenAPI they come from, allow unknown fields, so a misspelt key
 *    (`livenesProbe`) would pass. The same packages ship TypeScript interfaces generated from the
 *    same schemas; type-checking every object as an object literal of its interface turns
 *    TypeScript's excess-property check into a strict "no unknown field" check at every depth.
 */
interface Kind {
  /** Module exporting the model class (its `validate()` runs the Ajv-compiled schema). */
  module: string;
  /** Module and interface name of the generated TypeScript type. */
  typeModule: string;
  typeName: string;
}

const KINDS: Record<string, Kind> = {
  'v1/Namespace': core('v1', 'Namespace'),
  'v1/ServiceAccount': core('v1', 'ServiceAccount'),
  'v1/ConfigMap': core('v1', 'ConfigMap'),
  'v1/Secret': core('v1', 'Secret'),
  'v1/Service': core('v1', 'Service'),
  'v1/PersistentVolumeClaim': core('v1', 'PersistentVolumeClaim'),
  'apps/v1/Deployment': core('apps/v1', 'Deployment'),
  'apps/v1/DaemonSet': core('apps/v1', 'DaemonSet'),
  'apps/v1/StatefulSet': core('apps/v1', 'StatefulSet'),
  'policy/v1/PodDisruptionBudget': core('policy/v1', 'PodDisruptionBudget'),
  'autoscaling/v2/HorizontalPodAutoscaler': core('autoscaling/v2', 'HorizontalPodAutoscaler'),
  'keda.sh/v1alpha1/ScaledObject': crd('@kubernetes-models/keda/keda.sh/v1alpha1', 'ScaledObject'),
  'keda.sh/v1alpha1/TriggerAuthentication': crd(
    '@kubernetes-models/keda/keda.sh/v1alpha1',
    'TriggerAuthentication',
  ),
  'monitoring.coreos.com/v1/ServiceMonitor': crd(
    '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
    'ServiceMonitor',
  ),
};

function core(group: string, kind: string): Kind {
  return crd(`kubernetes-models/${group}`, kind);
}

function crd(module: string, kind: string): Kind {
  return { module, typeModule: `${module}/${kind}`, typeName: `I${kind}` };
}

const kindKey = (o: Pick<K8sObject, 'apiVersion' | 'kind'>) => `${o.apiVersion}/${o.kind}`;

/** The kinds this module can validate (anything else is an error, never a silent pass). */
export const SUPPORTED_KINDS = Object.keys(KINDS);

/** Schema problems of one object, as `<kind>/<name>: <path> <message>` lines; empty when valid. */
export function schemaErrors(obj: K8sObject): string[] {
  const kind = KINDS[kindKey(obj)];
  const where = `${obj.kind}/${obj.metadata?.name}`;
  if (!kind) return [`${where}: no schema for ${kindKey(obj)} (supported: ${SUPPORTED_KINDS.join(', ')})`];
  const Model = (require(kind.module) as Record<string, new (data: unknown) => { validate(): void }>)[
    obj.kind
  ];
  try {
    new Model(obj).validate();
    return [];
  } catch (err) {
    // Ajv's errorsText: "data/spec/replicas must be integer, data/spec must have required property selector".
    return (err as Error).message.split(/, (?=data)/).map((m) => `${where}: ${m.replace(/^data/, '')}`);
  }
}

/**
 * Type-checks every object against its generated interface in one in-memory TypeScript program;
 * returns the diagnostics (unknown fields, wrong types) as `<kind>/<name>: <message>` lines.
 */
export function strictFieldErrors(objects: K8sObject[]): string[] {
  const unsupported = objects
    .filter((o) => !KINDS[kindKey(o)])
    .map((o) => `${o.kind}/${o.metadata?.name}: no type for ${kindKey(o)}`);
  const checked = objects.filter((o) => KINDS[kindKey(o)]);
  const imports = [...new Set(checked.map((o) => kindKey(o)))].map((k, i) => ({
    key: k,
    alias: `T${i}`,
    ...KINDS[k],
  }));
  const alias = new Map(imports.map((i) => [i.key, i.alias]));
  const lines = imports.map((i) => `import type { ${i.typeName} as ${i.alias} } from '${i.typeModule}';`);
  const owners: string[] = [];
  checked.forEach((o, n) => {
    owners.push(`${o.kind}/${o.metadata?.name}`);
    lines.push(
      `// @object ${n}`,
      `export const o${n}: ${alias.get(kindKey(o))} = ${JSON.stringify(o, null, 1)};`,
    );
  });
  const source = lines.join('\n');
  const fileName = `${process.cwd()}/__k8s_strict_check__.ts`;
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    types: [],
    lib: ['lib.es2022.d.ts'],
    // node10 resolution reads the packages' per-kind .d.ts files, which their `exports` maps omit.
    ignoreDeprecations: '6.0',
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.readFile = (f) => (f === fileName ? source : readFile(f));
  host.fileExists = (
    (orig) => (f: string) =>
      f === fileName || orig(f)
  )(host.fileExists.bind(host));
  host.getSourceFile = (f, lang, onError, create) =>
    f === fileName ? ts.createSourceFile(f, source, lang) : getSourceFile(f, lang, onError, create);
  const program = ts.createProgram([fileName], options, host);
  const diagnostics = ts.getPreEmitDiagnostics(program);
  const objectStarts = [...source.matchAll(/^\/\/ @object (\d+)$/gm)].map((m) => m.index ?? 0);
  return [
    ...unsupported,
    ...diagnostics.map((d) => {
      const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
      if (d.file?.fileName !== fileName || d.start === undefined) return `typescript: ${message}`;
      const index = objectStarts.filter((s) => s <= d.start!).length - 1;
      const { line } = d.file.getLineAndCharacterOfPosition(d.start);
      return `${owners[index] ?? '?'} (line ${line + 1} of the generated check): ${message}`;
    }),
  ];
}
