import type { Queue } from 'bullmq';
import type Redis from 'ioredis';
import type { Keyspace } from '@coordbus/envelope';
import type { BullJobData } from './bull-types';

export * from './bull-types';

/**
 * The hook-jobs queue (prefix hash-tagged so every queue key shares one cluster slot). bullmq is
 * required here, not at the top: `coordbus jobs` commands that never queue do not load it.
 */
export function createJobQueue(connection: Redis, keyspace: Keyspace): Queue<BullJobData> {
  const bullmq = require('bullmq') as typeof import('bullmq');
  return new bullmq.Queue<BullJobData>(keyspace.jobQueue, { connection, prefix: keyspace.bullPrefix });
}
