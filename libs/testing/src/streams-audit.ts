import type Redis from 'ioredis';

/** One consumer group of a stream, as `XINFO GROUPS` reports it. */
export interface GroupState {
  name: string;
  consumers: number;
  /** Entries delivered to some consumer of the group and not acked yet. */
  pending: number;
  lastDeliveredId: string;
  /** Entries not yet delivered to the group (null when Redis cannot tell, e.g. after XDEL). */
  lag: number | null;
}

function pairs(row: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < row.length; i += 2) out[String(row[i])] = row[i + 1];
  return out;
}

/** The consumer groups of `stream` (`[]` when the stream does not exist). */
export async function streamGroups(redis: Redis, stream: string): Promise<GroupState[]> {
  if (!(await redis.exists(stream))) return [];
  const rows = (await redis.xinfo('GROUPS', stream)) as unknown[][];
  return rows.map((row) => {
    const g = pairs(row);
    return {
      name: String(g.name),
      consumers: Number(g.consumers),
      pending: Number(g.pending),
      lastDeliveredId: String(g['last-delivered-id']),
      lag: g.lag === null || g.lag === undefined ? null : Number(g.lag),
    };
  });
}

/** The id of the last entry ever added to `stream` (`XINFO STREAM last-generated-id`), null when it does not exist. */
export async function lastGeneratedId(redis: Redis, stream: string): Promise<string | null> {
  if (!(await redis.exists(stream))) return null;
  const info = pairs((await redis.xinfo('STREAM', stream)) as unknown[]);
  return String(info['last-generated-id']);
}

/**
 * True when every group of `stream` has been delivered everything ever added (its last-delivered
 * id is the stream's last-generated id) and holds nothing pending: the stream is drained.
 */
export async function streamDrained(redis: Redis, stream: string): Promise<boolean> {
  const last = await lastGeneratedId(redis, stream);
  if (last === null) return true;
  const groups = await streamGroups(redis, stream);
  return groups.every((g) => g.pending === 0 && g.lastDeliveredId === last);
}

/**
 * Sums every sample of a Prometheus counter or gauge (all label sets) from a service's
 * `/metrics`; 0 when the metric is absent. Rejects when the service does not answer.
 */
export async function metricSum(baseUrl: string, name: string, timeoutMs = 5000): Promise<number> {
  const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
      const value = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (Number.isFinite(value)) sum += value;
    }
  }
  return sum;
}

/**
 * A small seeded PRNG (mulberry32): a failing soak run prints its seed, and `SOAK_SEED` replays
 * the same choices (which replica is killed, which op a session runs).
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
