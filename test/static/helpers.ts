import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { SERVICES, type ServiceEntry } from '@coordbus/config';

/** The repository root (test/static/..). */
export const ROOT = resolve(__dirname, '..', '..');

export type { ServiceEntry } from '@coordbus/config';

/** The service table that the services, `npm start` and the container entry point share. */
export function serviceTable(): ServiceEntry[] {
  return [...SERVICES];
}

/** Every app under apps/ except the CLI: each one is a long-running service that must be deployed. */
export function serviceApps(): string[] {
  return readdirSync(join(ROOT, 'apps'), { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name !== 'cli')
    .map((d) => d.name)
    .sort();
}

/** Parses a compose file the way Compose does for what these tests read (YAML 1.1 `<<` merge keys). */
export function readCompose(file: string): ComposeFile {
  return parse(readFileSync(join(ROOT, file), 'utf8'), { merge: true }) as ComposeFile;
}

export interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string> | string[];
  ports?: (string | number | { target: number; published?: string | number; host_ip?: string })[];
  volumes?: (string | { type?: string; source?: string; target: string; read_only?: boolean })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  container_name?: string;
  profiles?: string[];
  restart?: string;
  user?: string;
  stop_grace_period?: string;
  read_only?: boolean;
  tmpfs?: string | string[];
  networks?: string[] | Record<string, unknown>;
}

export interface ComposeFile {
  name?: string;
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
  networks?: Record<string, unknown>;
}

/** A compose environment in its map form (the list form `KEY=value` is normalised). */
export function composeEnv(service: ComposeService): Record<string, string> {
  const env = service.environment ?? {};
  if (!Array.isArray(env))
    return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v == null ? '' : String(v)]));
  return Object.fromEntries(
    env.map((line) => {
      const i = line.indexOf('=');
      return i < 0 ? [line, ''] : [line.slice(0, i), line.slice(i + 1)];
    }),
  );
}

/** A command/entrypoint as an argv list (a string is split on spaces, as Compose does without a shell). */
export function argv(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value.map(String) : value.split(/\s+/).filter(Boolean);
}

/** Compose's `${VAR:-default}` (defaults may nest: `${A:-${B}}`) as the value it takes with every VAR unset. */
export function composeDefault(value: string): string {
  for (;;) {
    const next = value.replace(/\$\{[A-Z0-9_]+(?::?-([^{}]*))?\}/g, (_m, d: string | undefined) => d ?? '');
    if (next === value) return value;
    value = next;
  }
}

// ---- Kubernetes ----------------------------------------------------------------------------

/** A rendered Kubernetes object, loosely typed: tests read what they assert. */
export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  [k: string]: any;
};

let kubectlChecked = false;

/**
 * Renders a kustomization directory with `kubectl kustomize` (kustomize v5 built into kubectl;
 * offline, no cluster needed) and returns its objects. kubectl is part of this project's machine
 * image; without it the test fails and says so rather than passing on nothing.
 */
export function kustomize(dir: string): K8sObject[] {
  if (!kubectlChecked) {
    try {
      execFileSync('kubectl', ['version', '--client'], { stdio: 'pipe' });
    } catch {
      throw new Error('kubectl is not on PATH: it renders the kustomizations (apt-get install kubectl)');
    }
    kubectlChecked = true;
  }
  const out = execFileSync('kubectl', ['kustomize', dir], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 32 * 1024 * 1024,
  });
  return parseAllDocuments(out)
    .map((d) => {
      if (d.errors.length) throw new Error(`kustomize ${dir} rendered invalid YAML: ${d.errors[0].message}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

export const WORKLOAD_KINDS = ['Deployment', 'DaemonSet', 'StatefulSet'];

export function byKind(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found)
    throw new Error(
      `no ${kind}/${name} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`,
    );
  return found;
}

/** The env entry `name` of a container, or undefined. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function envOf(container: any, name: string): any {
  return (container.env ?? []).find((e: { name: string }) => e.name === name);
}

/** Does a label selector's matchLabels select these labels? */
export function selects(
  matchLabels: Record<string, string> | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  if (!matchLabels || !Object.keys(matchLabels).length) return false;
  return Object.entries(matchLabels).every(([k, v]) => labels?.[k] === v);
}

export function exists(rel: string): boolean {
  return existsSync(join(ROOT, rel));
}
