/** What a BullMQ job carries: only the id. Everything else is in the job's metadata (and never secrets). */
export interface BullJobData {
  id: string;
}

/** A failed BullMQ job is kept a day for operators; the job's own record is the metadata. */
export const BULL_JOB_OPTIONS = {
  removeOnComplete: true,
  removeOnFail: { age: 86_400 },
  attempts: 1,
} as const;
