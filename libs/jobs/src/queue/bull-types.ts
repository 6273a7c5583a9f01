import type { JobEventIdentity } from '../domain/job';

/**
 * What a BullMQ job carries: the id, and the unchanging fields of the job's lifecycle events, so
 * that a runner claims it (metadata, secrets, status, event) in one round trip. Everything else
 * is in the job's metadata; never secrets.
 */
export interface BullJobData {
  id: string;
  /** Absent on jobs queued by an older submitter: those are read, then claimed. */
  event?: JobEventIdentity;
}

/** A failed BullMQ job is kept a day for operators; the job's own record is the metadata. */
export const BULL_JOB_OPTIONS = {
  removeOnComplete: true,
  removeOnFail: { age: 86_400 },
  attempts: 1,
} as const;
