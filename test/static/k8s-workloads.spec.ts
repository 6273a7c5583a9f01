// The config module itself, not the @coordbus/runtime barrel: the barrel loads Nest, which this
// unit project (no Nest transform) does not need to read one duration.
import { parseDuration } from '@coordbus/config';
import {
  K8sObject,
  ROOT,
  WORKLOAD_KINDS,
  byKind,
  envOf,
  find,
  kustomize,
  selects,
  serviceApps,
  serviceTable,
} from './helpers';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

/**
 * What every coordbus workload must have, asserted on the rendered dev and prod overlays: probes,
 * graceful termination longer than the drain, resources, a locked-down security context, a
 * consumer name from the pod name, a PodDisruptionBudget, Prometheus scraping; plus the dev/prod
 * differences (in-cluster vs external Redis, SQLite on a PVC vs PostgreSQL for the archivist).
 */
const CONSUMERS = ['fanout-publisher', 'sentinel-subscriber', 'job-coordinator', 'telemetry-archivist'];
const overlays: Record<string, K8sObject[]> = {};

let tmp: string;
beforeAll(() => {
  for (const o of ['dev', 'prod', 'cluster']) overlays[o] = kustomize(join(ROOT, 'k8s', 'overlays', o));
  // prod with the opt-in ServiceMonitor component, as its kustomization.yaml says to add it.
  tmp = mkdtempSync(join(tmpdir(), 'coordbus-k8s-'));
  writeFileSync(
    join(tmp, 'kustomization.yaml'),
    [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      'resources:',
      `  - ${relative(tmp, join(ROOT, 'k8s', 'overlays', 'prod'))}`,
      'components:',
      `  - ${relative(tmp, join(ROOT, 'k8s', 'components', 'service-monitor'))}`,
      '',
    ].join('\n'),
  );
  overlays['prod+monitor'] = kustomize(tmp);
}, 60_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Workloads that run the coordbus image (the dev Redis is not one of them). */
const coordbusWorkloads = (objects: K8sObject[]) =>
  objects.filter(
    (o) =>
      WORKLOAD_KINDS.includes(o.kind) &&
      o.spec.template.spec.containers.some((c: { env?: unknown[] }) => envOf(c, 'COORDBUS_SERVICE')),
  );

const shutdownTimeoutMs = (objects: K8sObject[]): number => {
  const config = byKind(objects, 'ConfigMap').find((c) => c.metadata.name.startsWith('coordbus-config'));
  const ms = parseDuration(String(config?.data?.SHUTDOWN_TIMEOUT_MS ?? '20s'), 'ms');
  if (ms === undefined) throw new Error(`SHUTDOWN_TIMEOUT_MS in coordbus-config is not a duration`);
  return ms;
};

describe.each(['dev', 'prod'])('overlay %s', (overlay) => {
  const objects = () => overlays[overlay];

  it('deploys every service app: a Deployment per consumer service, the log-tailer as a DaemonSet', () => {
    const table = serviceTable();
    expect(table.map((s) => s.name).sort()).toEqual(serviceApps());
    const workloads = coordbusWorkloads(objects());
    expect(workloads.map((w) => `${w.kind}/${w.metadata.name}`).sort()).toEqual(
      [...CONSUMERS.map((n) => `Deployment/${n}`), 'DaemonSet/log-tailer'].sort(),
    );
    for (const w of workloads) {
      const c = w.spec.template.spec.containers[0];
      expect(envOf(c, 'COORDBUS_SERVICE').value).toBe(w.metadata.name);
    }
  });

  it('every coordbus workload: ports, probes, scrape annotations, resources, graceful stop, consumer name, Redis from the Secret', () => {
    const drainMs = shutdownTimeoutMs(objects());
    const table = new Map(serviceTable().map((s) => [s.name, s]));
    for (const w of coordbusWorkloads(objects())) {
      const name = w.metadata.name;
      const pod = w.spec.template.spec;
      const c = pod.containers[0];
      const ctx = `${w.kind}/${name}`;
      const port = table.get(name)!.port;
      expect({ ctx, port: envOf(c, 'HTTP_PORT')?.value }).toEqual({ ctx, port: String(port) });
      expect({ ctx, ports: c.ports }).toEqual({
        ctx,
        ports: [{ name: 'http', containerPort: port, protocol: 'TCP' }],
      });
      expect({ ctx, liveness: c.livenessProbe?.httpGet }).toEqual({
        ctx,
        liveness: { path: '/healthz', port: 'http' },
      });
      expect({ ctx, readiness: c.readinessProbe?.httpGet }).toEqual({
        ctx,
        readiness: { path: '/readyz', port: 'http' },
      });
      expect({ ctx, annotations: w.spec.template.metadata.annotations }).toEqual({
        ctx,
        annotations: {
          'prometheus.io/scrape': 'true',
          'prometheus.io/port': String(port),
          'prometheus.io/path': '/metrics',
        },
      });
      for (const kind of ['requests', 'limits']) {
        expect({ ctx, kind, cpu: !!c.resources?.[kind]?.cpu, memory: !!c.resources?.[kind]?.memory }).toEqual(
          { ctx, kind, cpu: true, memory: true },
        );
      }
      // preStop sleep, then SIGTERM and a drain of up to SHUTDOWN_TIMEOUT_MS: the grace period covers both.
      const preStop = c.lifecycle?.preStop?.exec?.command as string[] | undefined;
      expect({ ctx, preStop: preStop?.[0] }).toEqual({ ctx, preStop: 'sleep' });
      const preStopMs = Number(preStop![1]) * 1000;
      expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(preStopMs + drainMs);
      expect({ ctx, consumer: envOf(c, 'COORDBUS_CONSUMER')?.valueFrom }).toEqual({
        ctx,
        consumer: { fieldRef: { fieldPath: 'metadata.name' } },
      });
      expect({ ctx, redis: envOf(c, 'REDIS_URL')?.valueFrom }).toEqual({
        ctx,
        redis: { secretKeyRef: { name: 'coordbus-redis', key: 'REDIS_URL' } },
      });
      const config = (c.envFrom ?? []).map((e: { configMapRef?: { name: string } }) => e.configMapRef?.name);
      expect(byKind(objects(), 'ConfigMap').map((m) => m.metadata.name)).toEqual(
        expect.arrayContaining(config),
      );
      expect(c.image).not.toMatch(/:latest$|^[^:]+$/);
    }
  });

  it('every workload (Redis included) runs non-root, read-only, without privilege escalation or capabilities', () => {
    for (const w of byKind(objects(), 'Deployment').concat(
      byKind(objects(), 'DaemonSet'),
      byKind(objects(), 'StatefulSet'),
    )) {
      const pod = w.spec.template.spec;
      for (const c of pod.containers) {
        const ctx = `${w.kind}/${w.metadata.name}/${c.name}`;
        const sc = c.securityContext ?? {};
        expect({ ctx, runAsNonRoot: sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot }).toEqual({
          ctx,
          runAsNonRoot: true,
        });
        expect({ ctx, uid: (sc.runAsUser ?? pod.securityContext?.runAsUser) > 0 }).toEqual({
          ctx,
          uid: true,
        });
        expect({
          ctx,
          ape: sc.allowPrivilegeEscalation,
          ro: sc.readOnlyRootFilesystem,
          drop: sc.capabilities?.drop,
          add: sc.capabilities?.add,
        }).toEqual({
          ctx,
          ape: false,
          ro: true,
          drop: ['ALL'],
          add: undefined,
        });
        expect({ ctx, seccomp: pod.securityContext?.seccompProfile?.type }).toEqual({
          ctx,
          seccomp: 'RuntimeDefault',
        });
        expect({ ctx, token: pod.automountServiceAccountToken }).toEqual({ ctx, token: false });
      }
    }
    // The coordbus image writes only /tmp (and the archivist's /data): an emptyDir backs /tmp.
    for (const w of coordbusWorkloads(objects())) {
      const pod = w.spec.template.spec;
      const mount = pod.containers[0].volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/tmp');
      expect({
        w: w.metadata.name,
        emptyDir: !!pod.volumes.find((v: { name: string }) => v.name === mount?.name)?.emptyDir,
      }).toEqual({ w: w.metadata.name, emptyDir: true });
    }
  });

  it('every Deployment has a PodDisruptionBudget that selects its pods and never blocks a drain of one replica', () => {
    const pdbs = byKind(objects(), 'PodDisruptionBudget');
    for (const d of byKind(objects(), 'Deployment')) {
      const matching = pdbs.filter((p) =>
        selects(p.spec.selector.matchLabels, d.spec.template.metadata.labels),
      );
      expect({ d: d.metadata.name, pdbs: matching.length }).toEqual({ d: d.metadata.name, pdbs: 1 });
      expect(matching[0].spec.maxUnavailable).toBe(1);
    }
  });

  it('every Deployment/DaemonSet selector matches its own pod template, and every Service selects pods', () => {
    const workloads = byKind(objects(), 'Deployment').concat(
      byKind(objects(), 'DaemonSet'),
      byKind(objects(), 'StatefulSet'),
    );
    for (const w of workloads)
      expect({
        w: w.metadata.name,
        ok: selects(w.spec.selector.matchLabels, w.spec.template.metadata.labels),
      }).toEqual({ w: w.metadata.name, ok: true });
    for (const s of byKind(objects(), 'Service')) {
      const target = workloads.find((w) => selects(s.spec.selector, w.spec.template.metadata.labels));
      expect({ s: s.metadata.name, selects: target?.metadata.name }).toEqual({
        s: s.metadata.name,
        selects: s.metadata.name,
      });
      const ports = target!.spec.template.spec.containers[0].ports.map((p: { name: string }) => p.name);
      for (const p of s.spec.ports) expect(ports).toContain(p.targetPort);
    }
  });

  it('the log-tailer DaemonSet mounts the host log directory read-only and follows a file inside it, with a per-node source', () => {
    const ds = find(objects(), 'DaemonSet', 'log-tailer');
    const pod = ds.spec.template.spec;
    const c = pod.containers[0];
    const logs = pod.volumes.find((v: { hostPath?: unknown }) => v.hostPath);
    const mount = c.volumeMounts.find((m: { name: string }) => m.name === logs.name);
    expect(mount.readOnly).toBe(true);
    const args: string[] = c.args;
    const path = args[args.indexOf('--path') + 1];
    expect(path.startsWith(`${mount.mountPath}/`)).toBe(true);
    // Checkpoints live in Redis keyed by source: the node name keeps nodes apart.
    expect(args[args.indexOf('--source') + 1]).toContain('$(NODE_NAME)');
    expect(envOf(c, 'NODE_NAME').valueFrom).toEqual({ fieldRef: { fieldPath: 'spec.nodeName' } });
  });
});

describe('dev overlay', () => {
  it('runs one Redis in the cluster with AOF on a PVC, and points REDIS_URL at its Service', () => {
    const objects = overlays.dev;
    const redis = find(objects, 'StatefulSet', 'redis');
    expect(redis.spec.replicas).toBe(1);
    const args: string[] = redis.spec.template.spec.containers[0].args;
    expect(args.slice(args.indexOf('--appendonly'), args.indexOf('--appendonly') + 2)).toEqual([
      '--appendonly',
      'yes',
    ]);
    expect(redis.spec.volumeClaimTemplates[0].metadata.name).toBe('data');
    const service = find(objects, 'Service', 'redis');
    expect(selects(service.spec.selector, redis.spec.template.metadata.labels)).toBe(true);
    const secret = find(objects, 'Secret', 'coordbus-redis');
    const url = new URL(Buffer.from(secret.data.REDIS_URL, 'base64').toString());
    expect(url.hostname).toBe('redis');
    expect(Number(url.port)).toBe(service.spec.ports[0].port);
  });

  it('keeps the archivist on SQLite: a PVC, one replica, Recreate', () => {
    const d = find(overlays.dev, 'Deployment', 'telemetry-archivist');
    expect(d.spec.strategy.type).toBe('Recreate');
    expect(d.spec.replicas ?? 1).toBe(1);
    const claim = d.spec.template.spec.volumes.find(
      (v: { persistentVolumeClaim?: unknown }) => v.persistentVolumeClaim,
    ).persistentVolumeClaim.claimName;
    find(overlays.dev, 'PersistentVolumeClaim', claim);
    const c = d.spec.template.spec.containers[0];
    const dataDir = envOf(c, 'ARCHIVIST_DATA_DIR').value;
    expect(c.volumeMounts.map((m: { mountPath: string }) => m.mountPath)).toContain(dataDir);
    expect(envOf(c, 'DATABASE_URL')).toBeUndefined();
    expect(find(overlays.dev, 'HorizontalPodAutoscaler', 'telemetry-archivist').spec.maxReplicas).toBe(1);
  });

  it('autoscales every consumer Deployment with a plain HPA (no KEDA needed) and leaves replicas to it', () => {
    const hpas = byKind(overlays.dev, 'HorizontalPodAutoscaler');
    expect(hpas.map((h) => h.spec.scaleTargetRef.name).sort()).toEqual([...CONSUMERS].sort());
    for (const h of hpas) {
      const d = find(overlays.dev, 'Deployment', h.spec.scaleTargetRef.name);
      expect(h.spec.scaleTargetRef.kind).toBe('Deployment');
      expect(d.spec.replicas).toBeUndefined();
      expect(h.spec.minReplicas).toBeGreaterThanOrEqual(1);
    }
    expect(byKind(overlays.dev, 'ScaledObject')).toEqual([]);
  });
});

describe('prod overlay', () => {
  it('expects an external Redis: no Redis workload, no rendered coordbus-redis Secret (you create it)', () => {
    expect(byKind(overlays.prod, 'StatefulSet')).toEqual([]);
    expect(byKind(overlays.prod, 'Secret')).toEqual([]);
  });

  it('runs the archivist on PostgreSQL from a Secret: no PVC, rolling updates, scaled up to several replicas', () => {
    const d = find(overlays.prod, 'Deployment', 'telemetry-archivist');
    const c = d.spec.template.spec.containers[0];
    expect(envOf(c, 'DATABASE_URL').valueFrom).toEqual({
      secretKeyRef: { name: 'coordbus-archive', key: 'DATABASE_URL' },
    });
    expect(envOf(c, 'ARCHIVIST_DATA_DIR')).toBeUndefined();
    // The only claim left is the agents' shared workspace (the job-coordinator's, not the archivist's).
    expect(byKind(overlays.prod, 'PersistentVolumeClaim').map((p) => p.metadata.name)).toEqual([
      'coordbus-workspace',
    ]);
    expect(
      d.spec.template.spec.volumes.filter(
        (v: { persistentVolumeClaim?: unknown }) => v.persistentVolumeClaim,
      ),
    ).toEqual([]);
    expect(d.spec.strategy.type).toBe('RollingUpdate');
    expect(find(overlays.prod, 'ScaledObject', 'telemetry-archivist').spec.maxReplicaCount).toBeGreaterThan(
      1,
    );
  });

  it('scales every consumer Deployment with KEDA, authenticated from the coordbus-redis Secret', () => {
    const scaled = byKind(overlays.prod, 'ScaledObject');
    expect(scaled.map((s) => s.spec.scaleTargetRef.name).sort()).toEqual([...CONSUMERS].sort());
    const auth = byKind(overlays.prod, 'TriggerAuthentication');
    expect(auth).toHaveLength(1);
    const params = Object.fromEntries(
      auth[0].spec.secretTargetRef.map((r: { parameter: string; name: string; key: string }) => [
        r.parameter,
        `${r.name}/${r.key}`,
      ]),
    );
    expect(params).toEqual({
      address: 'coordbus-redis/REDIS_ADDRESS',
      username: 'coordbus-redis/REDIS_USERNAME',
      password: 'coordbus-redis/REDIS_PASSWORD',
      tls: 'coordbus-redis/REDIS_TLS',
    });
    for (const s of scaled) {
      const d = find(overlays.prod, 'Deployment', s.spec.scaleTargetRef.name);
      expect(d.spec.replicas).toBeUndefined();
      expect(s.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
      expect(s.spec.maxReplicaCount).toBeGreaterThanOrEqual(s.spec.minReplicaCount);
      for (const t of s.spec.triggers) {
        expect({ s: s.metadata.name, auth: t.authenticationRef?.name }).toEqual({
          s: s.metadata.name,
          auth: auth[0].metadata.name,
        });
        if (t.type === 'redis-streams') expect(Number(t.metadata.lagCount)).toBeGreaterThan(0);
        if (t.type === 'redis-streams') expect(t.metadata.activationLagCount).toBeDefined();
      }
    }
  });

  it('has no ServiceMonitor unless opted in (it needs the Prometheus Operator CRDs); opted in, it selects every coordbus Service on its http port', () => {
    expect(byKind(overlays.prod, 'ServiceMonitor')).toEqual([]);
    const monitor = find(overlays['prod+monitor'], 'ServiceMonitor', 'coordbus');
    const services = byKind(overlays['prod+monitor'], 'Service');
    expect(services.length).toBe(CONSUMERS.length + 1);
    for (const s of services) {
      expect(selects(monitor.spec.selector.matchLabels, s.metadata.labels)).toBe(true);
      expect(s.spec.ports.map((p: { name: string }) => p.name)).toContain(monitor.spec.endpoints[0].port);
    }
    expect(monitor.spec.endpoints[0].path).toBe('/metrics');
  });
});

describe("hook jobs see the agents' worktrees", () => {
  it.each(['dev', 'prod'])(
    '%s: the job-coordinator serves only /workspace, mounted from the shared workspace volume',
    (overlay) => {
      const d = find(overlays[overlay], 'Deployment', 'job-coordinator');
      const c = d.spec.template.spec.containers[0];
      expect(envOf(c, 'JOBS_WORKSPACE_ROOTS').value).toBe('/workspace');
      const mount = c.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/workspace');
      const volume = d.spec.template.spec.volumes.find((v: { name: string }) => v.name === mount.name);
      if (overlay === 'prod') {
        // Every replica takes jobs from one queue, so every replica must see every worktree.
        const claim = find(overlays.prod, 'PersistentVolumeClaim', volume.persistentVolumeClaim.claimName);
        expect(claim.spec.accessModes).toEqual(['ReadWriteMany']);
      } else {
        expect(volume.hostPath).toEqual({ path: '/var/lib/coordbus/workspace', type: 'DirectoryOrCreate' });
        expect(byKind(overlays.dev, 'PersistentVolumeClaim').map((p) => p.metadata.name)).not.toContain(
          'coordbus-workspace',
        );
      }
    },
  );
});

describe('overlay cluster (Redis Cluster)', () => {
  it('is prod with REDIS_CLUSTER=1 for every service', () => {
    const config = byKind(overlays.cluster, 'ConfigMap').find((c) =>
      c.metadata.name.startsWith('coordbus-config'),
    );
    expect(config?.data.REDIS_CLUSTER).toBe('1');
    const key = (o: K8sObject) => `${o.kind}/${o.metadata.name.replace(/-[a-z0-9]{10}$/, '')}`;
    expect(overlays.cluster.map(key).sort()).toEqual(overlays.prod.map(key).sort());
    for (const w of coordbusWorkloads(overlays.cluster)) {
      const from = w.spec.template.spec.containers[0].envFrom.map(
        (e: { configMapRef: { name: string } }) => e.configMapRef.name,
      );
      expect(from).toContain(config!.metadata.name);
    }
  });

  it("scales with KEDA's cluster-aware triggers on the same streams, groups and lists as prod, from every node's address", () => {
    for (const s of byKind(overlays.cluster, 'ScaledObject')) {
      const prod = find(overlays.prod, 'ScaledObject', s.metadata.name);
      expect(s.spec.triggers.map((t: { type: string }) => t.type)).toEqual(
        prod.spec.triggers.map((t: { type: string }) =>
          t.type.replace(/^redis(-streams)?$/, 'redis-cluster$1'),
        ),
      );
      expect(s.spec.triggers.map((t: { metadata: unknown }) => t.metadata)).toEqual(
        prod.spec.triggers.map((t: { metadata: unknown }) => t.metadata),
      );
    }
    const [auth] = byKind(overlays.cluster, 'TriggerAuthentication');
    expect(
      auth.spec.secretTargetRef.map((r: { parameter: string; key: string }) => `${r.parameter}=${r.key}`),
    ).toEqual([
      'addresses=REDIS_ADDRESSES',
      'username=REDIS_USERNAME',
      'password=REDIS_PASSWORD',
      'tls=REDIS_TLS',
    ]);
  });
});
