import type Redis from 'ioredis';
import { COORDBUS_REDIS_TIMEOUT, readVar } from '@coordbus/config';
import { InvalidError, UnavailableError } from '@coordbus/envelope';

/** `COORDBUS_REDIS_TIMEOUT` (default 5 s): every `coordbus` command's bound on reaching Redis and on each reply. */
export function cliRedisTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const r = readVar(env, COORDBUS_REDIS_TIMEOUT);
  if (!r.ok) throw new InvalidError(r.problem, [r.problem]);
  return r.value;
}

/**
 * `connect()` of a lazy ioredis client, bounded: a Redis that accepts the connection but never
 * answers (stopped with SIGSTOP, a black-holed network) is reported as unavailable (exit 5)
 * within the bound instead of waited for — ioredis' connectTimeout covers only the TCP connect.
 */
export async function connectWithin(redis: Redis, timeoutMs: number, where: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new UnavailableError(
            `no answer from Redis at ${where} within ${timeoutMs} ms (COORDBUS_REDIS_TIMEOUT)`,
          ),
        ),
      timeoutMs,
    );
  });
  try {
    await Promise.race([redis.connect(), late]);
  } catch (err) {
    redis.disconnect();
    if (err instanceof UnavailableError) throw err;
    throw new UnavailableError(`cannot reach Redis at ${where}: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}
