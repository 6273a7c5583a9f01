import type { Cluster } from 'ioredis';
import { baseConfig, EnvReader } from './config';
import { createRedis, isCluster } from './redis';

describe('REDIS_CLUSTER', () => {
  it('is off by default and read as a boolean', () => {
    const off = new EnvReader({});
    expect(baseConfig(off, { service: 's', defaultHttpPort: 1 }).redisCluster).toBe(false);
    const on = new EnvReader({ REDIS_CLUSTER: 'true' });
    expect(baseConfig(on, { service: 's', defaultHttpPort: 1 }).redisCluster).toBe(true);
  });

  it('names the variable when it is not a boolean', () => {
    const env = new EnvReader({ REDIS_CLUSTER: 'cluster' });
    baseConfig(env, { service: 's', defaultHttpPort: 1 });
    expect(() => env.finish()).toThrow(/REDIS_CLUSTER must be a boolean/);
  });
});

describe('createRedis', () => {
  it('returns a Cluster in cluster mode, named and seeded from the URL', () => {
    const r = createRedis('redis://127.0.0.1:7000', {
      name: 'svc:cmd',
      cluster: true,
      clusterOptions: { lazyConnect: true },
    });
    try {
      expect(isCluster(r)).toBe(true);
      expect((r as unknown as Cluster).options.redisOptions).toMatchObject({ connectionName: 'svc:cmd' });
    } finally {
      r.disconnect();
    }
  });

  it('returns a plain Redis otherwise', () => {
    const r = createRedis('redis://127.0.0.1:1', { name: 'x', lazyConnect: true });
    try {
      expect(isCluster(r)).toBe(false);
      expect(r.options.connectionName).toBe('x');
    } finally {
      r.disconnect();
    }
  });
});
