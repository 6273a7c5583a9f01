import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDuration } from '@coordbus/config';
import {
  ComposeFile,
  ComposeService,
  ROOT,
  argv,
  composeDefault,
  composeEnv,
  readCompose,
  serviceApps,
  serviceTable,
} from './helpers';

/**
 * The compose files, read statically (test/compose/ runs docker-compose.yml for real): they parse,
 * every service app has a service running the one image built once, each has a readiness
 * healthcheck, nothing pins a container name or a host port on a scalable service, ports publish
 * on loopback unless asked, Redis persists (AOF on a volume), the services start only once Redis
 * is healthy and read the compose Redis unless a compose-specific variable says otherwise.
 */
const FILES = ['docker-compose.yml', 'docker-compose.cluster.yml'];
const ENTRY = '/app/scripts/container-entry.js';

/** Services running the coordbus image as a long-running service (not the one-shot CLI). */
const appServices = (file: ComposeFile) =>
  Object.entries(file.services).filter(([, s]) => composeEnv(s).COORDBUS_SERVICE !== undefined);

/** A published port pinned to a fixed host port (`8081:8081`, `{ published: 8081 }`). */
function fixedHostPort(port: NonNullable<ComposeService['ports']>[number]): boolean {
  if (typeof port === 'number') return false;
  if (typeof port === 'object') return port.published !== undefined && port.published !== '';
  // [host_ip:][host_port:]container_port[/proto]; IPv6 host addresses are not used here.
  return port.split('/')[0].split(':').length > 1;
}

describe.each(FILES)('%s', (name) => {
  let file: ComposeFile;
  beforeAll(() => {
    file = readCompose(name);
  });

  it('parses and declares a service per service app, each running the one image with its own name', () => {
    expect(file.services).toBeDefined();
    const services = appServices(file);
    expect(services.map(([n]) => n).sort()).toEqual(serviceApps());
    const images = new Set([...services, ['cli', file.services.cli] as const].map(([, s]) => s.image));
    expect([...images]).toEqual(['${COORDBUS_IMAGE:-coordbus:local}']);
    for (const [n, s] of services) expect(composeEnv(s).COORDBUS_SERVICE).toBe(n);
  });

  it('builds that image once: exactly one service has build:', () => {
    const builders = Object.entries(file.services).filter(([, s]) => s.build !== undefined);
    expect(builders.map(([n]) => n)).toEqual(['fanout-publisher']);
    expect(builders[0][1].build).toEqual({ context: '.', dockerfile: 'Dockerfile' });
  });

  it("never reads the host's REDIS_URL or DATABASE_URL (those are the host CLI's): only COORDBUS_* variables", () => {
    const text = readFileSync(join(ROOT, name), 'utf8');
    expect(text.match(/\$\{(REDIS_URL|DATABASE_URL)\b/g)).toBeNull();
    for (const [n, s] of appServices(file)) {
      const url = composeEnv(s).REDIS_URL;
      expect({ n, url: url.startsWith('${') ? url.split(':-')[0] : 'fixed' }).toEqual({
        n,
        url: name === 'docker-compose.yml' ? '${COORDBUS_REDIS_URL' : 'fixed',
      });
    }
    expect(composeEnv(file.services['telemetry-archivist']).DATABASE_URL).toBe('${COORDBUS_DATABASE_URL:-}');
  });

  it('restarts a crashed service (unless-stopped: a crash restarts it, docker stop/kill do not)', () => {
    for (const [n, s] of appServices(file))
      expect({ n, restart: s.restart }).toEqual({ n, restart: 'unless-stopped' });
  });

  it('runs the job-coordinator as the invoking user with the workspace at its own path, serving only that root', () => {
    const jc = file.services['job-coordinator'];
    expect(jc.user).toBe('${COORDBUS_UID:-1000}:${COORDBUS_GID:-1000}');
    const root = '${COORDBUS_WORKSPACE:-${HOME}}';
    expect(jc.volumes).toContain(`${root}:${root}`);
    expect(composeEnv(jc).JOBS_WORKSPACE_ROOTS).toBe(root);
    // Hooks run npm/git: their caches need a writable HOME on the read-only root filesystem.
    expect(composeEnv(jc).HOME).toBe('/tmp');
  });

  it('gives every service a healthcheck; only one-shot services (CLI, cluster init) disable it', () => {
    for (const [n, s] of Object.entries(file.services)) {
      expect({ n, healthcheck: !!s.healthcheck }).toEqual({ n, healthcheck: true });
      if (s.healthcheck!.disable) {
        expect({ n, oneShot: !!s.profiles?.includes('cli') || s.restart === 'no' }).toEqual({
          n,
          oneShot: true,
        });
      } else {
        expect(argv(s.healthcheck!.test).length).toBeGreaterThan(1);
      }
    }
    for (const [n, s] of appServices(file)) {
      expect({ n, test: s.healthcheck!.test }).toEqual({ n, test: ['CMD', 'node', ENTRY, 'healthcheck'] });
    }
  });

  it('has no container_name and no fixed host port on a scalable service, so --scale works', () => {
    for (const [n, s] of Object.entries(file.services)) {
      expect({ n, container_name: s.container_name }).toEqual({ n, container_name: undefined });
    }
    for (const [n, s] of appServices(file)) {
      expect({ n, fixed: (s.ports ?? []).filter(fixedHostPort) }).toEqual({ n, fixed: [] });
    }
  });

  it('serves each service on its documented HTTP port, published on 127.0.0.1 unless COORDBUS_PUBLISH_HOST says', () => {
    const ports = new Map(serviceTable().map((s) => [s.name, s.port]));
    for (const [n, s] of appServices(file)) {
      expect({ n, port: composeEnv(s).HTTP_PORT }).toEqual({ n, port: String(ports.get(n)) });
      expect({ n, ports: s.ports }).toEqual({
        n,
        ports: [{ target: ports.get(n), host_ip: '${COORDBUS_PUBLISH_HOST:-127.0.0.1}' }],
      });
    }
    for (const [n, s] of Object.entries(file.services).filter(([n]) => n.startsWith('redis'))) {
      for (const p of s.ports ?? [])
        expect({ n, p: String(p).startsWith('127.0.0.1:') }).toEqual({ n, p: true });
    }
  });

  it('starts the services only once Redis answers', () => {
    const redisServices = Object.keys(file.services).filter((n) => n.startsWith('redis'));
    const initService = redisServices.find((n) => n.endsWith('init'));
    for (const [n, s] of appServices(file)) {
      const deps = s.depends_on as Record<string, { condition?: string }>;
      for (const r of redisServices) {
        const expected = r === initService ? 'service_completed_successfully' : 'service_healthy';
        expect({ n, r, condition: deps?.[r]?.condition }).toEqual({ n, r, condition: expected });
      }
      expect(new URL(composeDefault(composeEnv(s).REDIS_URL)).hostname).toMatch(/^redis/);
    }
  });

  it('keeps Redis data: AOF on and a named volume at /data, with a redis-cli ping healthcheck', () => {
    const nodes = Object.entries(file.services).filter(
      ([n, s]) => n.startsWith('redis') && !n.endsWith('init') && s.image?.startsWith('redis:7'),
    );
    expect(nodes.length).toBeGreaterThanOrEqual(1);
    for (const [n, s] of nodes) {
      const command = argv(s.command).join(' ');
      expect({ n, aof: /--appendonly yes/.test(command) }).toEqual({ n, aof: true });
      const volume = (s.volumes ?? []).map(String).find((v) => v.endsWith(':/data'));
      expect({ n, volume: !!volume }).toEqual({ n, volume: true });
      expect(Object.keys(file.volumes ?? {})).toContain(volume!.split(':')[0]);
      expect(s.healthcheck!.test).toEqual(['CMD', 'redis-cli', 'ping']);
    }
  });

  it('stops gracefully: the grace period outlasts SHUTDOWN_TIMEOUT_MS; the root filesystem is read-only', () => {
    for (const [n, s] of appServices(file)) {
      const drain = parseDuration(composeEnv(s).SHUTDOWN_TIMEOUT_MS ?? '20s', 'ms')!;
      expect({ n, longer: parseDuration(s.stop_grace_period ?? '10s', 'ms')! > drain }).toEqual({
        n,
        longer: true,
      });
      expect({ n, ro: s.read_only, tmp: argv(s.tmpfs as string[]) }).toEqual({ n, ro: true, tmp: ['/tmp'] });
    }
  });

  it('gives the archivist a volume at its data directory, and the log-tailer a read-only log directory it follows', () => {
    const archivist = file.services['telemetry-archivist'];
    const dataDir = composeEnv(archivist).ARCHIVIST_DATA_DIR;
    const dataVolume = (archivist.volumes ?? []).map(String).find((v) => v.split(':')[1] === dataDir);
    expect(Object.keys(file.volumes ?? {})).toContain(dataVolume?.split(':')[0]);
    const tailer = file.services['log-tailer'];
    const logs = (tailer.volumes ?? []).map((v) => composeDefault(String(v))).find((v) => v.endsWith(':ro'));
    expect(logs).toBeDefined();
    const [source, mountPath] = logs!.split(':');
    // Unset COORDBUS_LOG_DIR is a named volume, not a bind that litters the checkout with ./logs.
    expect(Object.keys(file.volumes ?? {})).toContain(source);
    const args = argv(tailer.command);
    expect(args[args.indexOf('--path') + 1].startsWith(`${mountPath}/`)).toBe(true);
  });
});

describe('docker-compose.cluster.yml', () => {
  it('runs a 3-master Redis Cluster created by a one-shot redis-cli --cluster create, and points the services at it', () => {
    const file = readCompose('docker-compose.cluster.yml');
    const nodes = Object.entries(file.services).filter(([n]) => /^redis-node-\d$/.test(n));
    expect(nodes).toHaveLength(3);
    const addresses: string[] = [];
    for (const [n, s] of nodes) {
      const command = argv(s.command).join(' ');
      expect({ n, cluster: /--cluster-enabled yes/.test(command) }).toEqual({ n, cluster: true });
      const net = Object.values(s.networks as Record<string, { ipv4_address: string }>)[0];
      addresses.push(`${net.ipv4_address}:6379`);
    }
    const init = file.services['redis-cluster-init'];
    const script = argv(init.command).join(' ');
    expect(script).toContain(`redis-cli --cluster create ${addresses.join(' ')}`);
    expect(script).toMatch(/--cluster-replicas 0/);
    expect(init.restart).toBe('no');
    for (const [n, s] of appServices(file)) {
      const env = composeEnv(s);
      expect({ n, cluster: env.REDIS_CLUSTER, url: env.REDIS_URL }).toEqual({
        n,
        cluster: '1',
        url: 'redis://redis-node-1:6379',
      });
    }
  });
});
