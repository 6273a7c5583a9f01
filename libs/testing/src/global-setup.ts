import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasRedisServer, TestRedisServer } from './redis-server';

export const STATE_FILE = join(tmpdir(), `coordbus-jest-redis-${process.pid}.json`);

/**
 * Provides the Redis every test uses: `REDIS_URL` when set; else a `redis-server` from PATH on a
 * free port; else a testcontainers Redis where a Docker engine runs. Workers inherit REDIS_URL.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.REDIS_URL) return;
  if (hasRedisServer()) {
    const server = await new TestRedisServer().start();
    process.env.REDIS_URL = server.url;
    (globalThis as Record<string, unknown>).__COORDBUS_REDIS__ = server;
    writeFileSync(STATE_FILE, JSON.stringify({ pid: server.pid, dir: server.dir }));
    return;
  }
  // Only on machines with Docker: loaded lazily so the dependency costs nothing elsewhere.
  const { GenericContainer } = await import('testcontainers');
  const container = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).start();
  process.env.REDIS_URL = `redis://${container.getHost()}:${container.getMappedPort(6379)}`;
  (globalThis as Record<string, unknown>).__COORDBUS_REDIS__ = container;
}
