import type { Cluster } from 'ioredis';
import { duplicateRedis, isCluster, openRedis, redisUrlOptions } from './connection';

describe('redisUrlOptions', () => {
  it('takes the seed, ACL user, password and TLS from the URL', () => {
    expect(redisUrlOptions('rediss://app%40x:p%3Ass@redis.example.com:7000')).toEqual({
      host: 'redis.example.com',
      port: 7000,
      db: 0,
      options: { username: 'app@x', password: 'p:ss', tls: { servername: 'redis.example.com' } },
    });
    expect(redisUrlOptions('redis://[::1]/2')).toEqual({ host: '::1', port: 6379, db: 2, options: {} });
  });

  it('rejects another scheme', () => {
    expect(() => redisUrlOptions('http://x')).toThrow(/redis:\/\/ or rediss:\/\//);
  });
});

describe('openRedis', () => {
  const opened: Array<{ disconnect(): void }> = [];
  afterEach(() => opened.splice(0).forEach((c) => c.disconnect()));

  it('opens a plain connection by default', () => {
    const r = openRedis('redis://127.0.0.1:1', { redisOptions: { lazyConnect: true } });
    opened.push(r);
    expect(isCluster(r)).toBe(false);
  });

  it('opens a Cluster seeded from the URL, its credentials and TLS on every node', () => {
    const r = openRedis('rediss://u:pw@10.0.0.5:7001', {
      cluster: true,
      clusterOptions: { lazyConnect: true },
      redisOptions: { connectionName: 'svc:cmd', maxRetriesPerRequest: null, retryStrategy: () => 1 },
    });
    opened.push(r);
    expect(isCluster(r)).toBe(true);
    const c = r as unknown as Cluster;
    expect((c as unknown as { startupNodes: unknown[] }).startupNodes).toEqual([
      { host: '10.0.0.5', port: 7001 },
    ]);
    expect(c.options.redisOptions).toMatchObject({
      username: 'u',
      password: 'pw',
      tls: { servername: '10.0.0.5' },
      connectionName: 'svc:cmd',
      maxRetriesPerRequest: null,
    });
    // A Cluster reconnects on its own schedule; a per-node retryStrategy is not passed down.
    expect(c.options.redisOptions).not.toHaveProperty('retryStrategy');
    expect(typeof c.options.clusterRetryStrategy).toBe('function');
  });

  it('refuses a database other than 0 in cluster mode', () => {
    expect(() => openRedis('redis://127.0.0.1:7000/3', { cluster: true })).toThrow(/database 3/);
  });

  it('duplicates a Cluster as a Cluster with the same nodes and a new connection name', () => {
    const r = openRedis('redis://u:pw@127.0.0.1:7001', {
      cluster: true,
      clusterOptions: { lazyConnect: true },
      redisOptions: { connectionName: 'a' },
    });
    const d = duplicateRedis(r, 'b');
    opened.push(r, d);
    expect(isCluster(d)).toBe(true);
    expect((d as unknown as Cluster).options.redisOptions).toMatchObject({
      connectionName: 'b',
      username: 'u',
      password: 'pw',
    });
    const plain = openRedis('redis://127.0.0.1:1', { redisOptions: { lazyConnect: true } });
    const p2 = duplicateRedis(plain, 'c');
    opened.push(plain, p2);
    expect(isCluster(p2)).toBe(false);
    expect(p2.options.connectionName).toBe('c');
  });
});
