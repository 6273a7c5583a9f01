import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { cleanupNamespace, testNamespace, testRedisUrl } from '@coordbus/testing';
import {
  K8sObject,
  ROOT,
  argv,
  composeDefault,
  composeEnv,
  envOf,
  find,
  kustomize,
  readCompose,
  serviceTable,
} from './helpers';

/**
 * The environment the deployment files give each service is one the BUILT service accepts: every
 * service is started the way its container starts it (scripts/container-entry.js, the service
 * picked by COORDBUS_SERVICE, the manifest's env and args), becomes ready against a real Redis,
 * passes the image's HEALTHCHECK command, and drains on SIGTERM within the grace period the
 * manifest gives it. What cannot exist here is swapped, and only that: Redis is the test Redis,
 * the HTTP port is a free one, paths under /data and /var/log/coordbus point into a temp dir, and
 * the namespace isolates the run.
 */
const ENTRY = join(ROOT, 'scripts', 'container-entry.js');

interface Launch {
  service: string;
  env: Record<string, string>;
  args: string[];
  /** How long the orchestrator waits after SIGTERM before SIGKILL. */
  graceMs: number;
}

let tmp: string;
let redis: Redis;
const namespace = testNamespace('deploy-env');

beforeAll(() => {
  if (!existsSync(join(ROOT, 'dist', 'apps', 'cli', 'main.js')))
    throw new Error('dist/ is missing: run npm run build first');
  tmp = mkdtempSync(join(tmpdir(), 'coordbus-deploy-env-'));
  mkdirSync(join(tmp, 'logs'));
  redis = new Redis(testRedisUrl());
});

afterAll(async () => {
  await cleanupNamespace(redis, namespace);
  redis.disconnect();
  rmSync(tmp, { recursive: true, force: true });
});

/** Maps container paths onto this machine; everything else in the manifest stays as written. */
function localise(value: string): string {
  return value
    .replace(/^\/var\/log\/coordbus(?=\/|$)/, join(tmp, 'logs'))
    .replace(/^\/data(?=\/|$)/, join(tmp, 'data'));
}

function overrides(service: string): Record<string, string> {
  return {
    REDIS_URL: testRedisUrl(),
    COORDBUS_NAMESPACE: namespace,
    HTTP_PORT: '0',
    HTTP_HOST: '127.0.0.1',
    COORDBUS_SERVICE: service,
  };
}

function fromCompose(file: string): Launch[] {
  const compose = readCompose(file);
  return serviceTable().map(({ name }) => {
    const s = compose.services[name];
    const env = Object.fromEntries(
      Object.entries(composeEnv(s))
        .map(([k, v]) => [k, localise(composeDefault(v))])
        .filter(([, v]) => v !== ''),
    );
    const grace = /^(\d+)s$/.exec(s.stop_grace_period ?? '10s');
    return {
      service: name,
      env: { ...env, ...overrides(name) },
      args: argv(s.command).map(localise),
      graceMs: Number(grace![1]) * 1000,
    };
  });
}

function fromKubernetes(objects: K8sObject[]): Launch[] {
  const secretValue = (name: string, key: string) =>
    Buffer.from(find(objects, 'Secret', name).data[key], 'base64').toString();
  return serviceTable().map(({ name }) => {
    const kind = name === 'log-tailer' ? 'DaemonSet' : 'Deployment';
    const workload = find(objects, kind, name);
    const pod = workload.spec.template.spec;
    const c = pod.containers[0];
    const env: Record<string, string> = {};
    for (const from of c.envFrom ?? [])
      Object.assign(env, find(objects, 'ConfigMap', from.configMapRef.name).data);
    const fields: Record<string, string> = {
      'metadata.name': `${name}-5d9c7b8f4-x2x9z`,
      'spec.nodeName': 'node-a.example.internal',
    };
    for (const e of c.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.valueFrom?.fieldRef) env[e.name] = fields[e.valueFrom.fieldRef.fieldPath];
      else if (e.valueFrom?.secretKeyRef) {
        const ref = e.valueFrom.secretKeyRef;
        // As the kubelet does: an optional reference to a Secret that is not there sets nothing.
        const present = objects.some((o) => o.kind === 'Secret' && o.metadata.name === ref.name);
        if (present || !ref.optional) env[e.name] = secretValue(ref.name, ref.key);
      }
    }
    for (const k of Object.keys(env)) env[k] = localise(env[k]);
    // The kubelet expands $(VAR) in args from the container's env.
    const args = (c.args ?? []).map((a: string) =>
      localise(a.replace(/\$\(([A-Z0-9_]+)\)/g, (_m, v: string) => env[v] ?? _m)),
    );
    expect(envOf(c, 'COORDBUS_CONSUMER')).toBeDefined();
    return {
      service: name,
      env: { ...env, ...overrides(name) },
      args,
      graceMs: pod.terminationGracePeriodSeconds * 1000,
    };
  });
}

interface Running {
  child: ChildProcess;
  url: string;
  output: string[];
  exited: Promise<number | string>;
}

/** Starts `node scripts/container-entry.js [args]` with only the launch's env (plus PATH), as the image does. */
function start(launch: Launch, timeoutMs = 30_000): Promise<Running> {
  const child = spawn(process.execPath, [ENTRY, ...launch.args], {
    cwd: tmp,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...launch.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<number | string>((r) => child.once('exit', (code, sig) => r(code ?? sig ?? -1)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${launch.service} did not start within ${timeoutMs} ms:\n${output.join('\n')}`));
    }, timeoutMs);
    for (const stream of [child.stdout, child.stderr]) {
      let buf = '';
      stream.on('data', (d: Buffer) => {
        buf += d.toString();
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          output.push(line);
          try {
            const rec = JSON.parse(line) as { http?: string; msg?: string };
            if (rec.http && rec.msg?.endsWith('started')) {
              clearTimeout(timer);
              resolve({ child, url: rec.http.replace('[::1]', '127.0.0.1'), output, exited });
            }
          } catch {
            /* not a JSON log line */
          }
        }
      });
    }
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${launch.service} exited (${code}) before starting:\n${output.join('\n')}`));
    });
  });
}

async function readyWithin(url: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = 0;
  while (Date.now() < deadline) {
    last = await fetch(`${url}/readyz`).then(
      (r) => r.status,
      () => 0,
    );
    if (last === 200) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  return last;
}

async function exercise(launch: Launch): Promise<void> {
  const svc = await start(launch);
  try {
    expect({ service: launch.service, ready: await readyWithin(svc.url, 20_000) }).toEqual({
      service: launch.service,
      ready: 200,
    });
    // The image's HEALTHCHECK command, against the running service.
    const port = new URL(svc.url).port;
    const health = spawnSync(process.execPath, [ENTRY, 'healthcheck'], {
      env: { PATH: process.env.PATH ?? '', COORDBUS_SERVICE: launch.service, HTTP_PORT: port },
      encoding: 'utf8',
    });
    expect({ service: launch.service, health: health.status, stderr: health.stderr }).toEqual({
      service: launch.service,
      health: 0,
      stderr: '',
    });
  } finally {
    const t0 = Date.now();
    svc.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      svc.exited,
      new Promise<string>((r) => (timer = setTimeout(() => r('still running'), launch.graceMs))),
    ]);
    clearTimeout(timer);
    if (code === 'still running') svc.child.kill('SIGKILL');
    expect({ service: launch.service, code, withinGrace: Date.now() - t0 < launch.graceMs }).toEqual({
      service: launch.service,
      code: 0,
      withinGrace: true,
    });
  }
}

describe('the deployment files start every built service', () => {
  it('docker-compose.yml: each service, with its compose env and command, becomes ready, passes the HEALTHCHECK and drains on SIGTERM', async () => {
    await Promise.all(fromCompose('docker-compose.yml').map(exercise));
  }, 180_000);

  it('k8s dev overlay: each workload, with its rendered env and args, becomes ready, passes the HEALTHCHECK and drains on SIGTERM', async () => {
    await Promise.all(fromKubernetes(kustomize(join(ROOT, 'k8s', 'overlays', 'dev'))).map(exercise));
  }, 180_000);
});
