import { spawnSync } from 'node:child_process';
import { freePort, TestRedisServer } from './redis-server';

/**
 * A local Redis Cluster owned by one test: `masters` redis-servers with `--cluster-enabled yes`
 * on free loopback ports, joined with `redis-cli --cluster create` (no replicas).
 */
export class TestRedisCluster {
  readonly nodes: TestRedisServer[] = [];

  constructor(private readonly masters = 3) {}

  /** Seed nodes as `redis://127.0.0.1:<port>` URLs. */
  get urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  async start(): Promise<this> {
    for (let i = 0; i < this.masters; i++) {
      // The cluster bus defaults to port + 10000, past 65535 for a port above 55535 (a fifth of
      // Linux's ephemeral range, where freePort draws from): give each node its own bus port.
      const node = new TestRedisServer({
        args: [
          '--cluster-port',
          String(await freePort()),
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          '2000',
        ],
      });
      this.nodes.push(node);
    }
    await Promise.all(this.nodes.map((n) => n.start()));
    const create = spawnSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...this.nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    if (create.status !== 0)
      throw new Error(`redis-cli --cluster create failed: ${create.stderr || create.stdout}`);
    // The cluster is usable once every node reports state ok.
    const deadline = Date.now() + 15_000;
    for (const node of this.nodes) {
      for (;;) {
        const info = spawnSync('redis-cli', ['-p', String(node.port), 'cluster', 'info'], {
          encoding: 'utf8',
        });
        if (info.stdout.includes('cluster_state:ok')) break;
        if (Date.now() > deadline)
          throw new Error(`cluster node ${node.port} did not reach cluster_state:ok`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return this;
  }

  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.dispose()));
  }
}
