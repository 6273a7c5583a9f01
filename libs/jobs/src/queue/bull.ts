import { Queue } from 'bullmq';
import type Redis from 'ioredis';
import type { Keyspace } from '@coordbus/envelope';
import type { BullJobData } from './bull-types';

export * from './bull-types';

/** The hook-jobs queue (prefix hash-tagged so every queue key shares one cluster slot). */
export function createJobQueue(connection: Redis, keyspace: Keyspace): Queue<BullJobData> {
  return new Queue<BullJobData>(keyspace.jobQueue, { connection, prefix: keyspace.bullPrefix });
}
