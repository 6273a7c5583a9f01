import type Redis from 'ioredis';
import { JobLogRecord, NotFoundError } from '@coordbus/envelope';
import { isTerminal, JobMeta } from '../domain/job';
import { decodeEntries, LogQuery, recordMatches, StreamEntry } from '../store/job-log';
import type { JobStore } from '../store/job-store';
import { crashJob, runnerAlive } from './liveness';

export interface FollowResult {
  /** The job's terminal status record, if one was read. */
  terminal: JobLogRecord | null;
  /** Set when the follow ended on something the user should be told (a crash). */
  message?: string;
}

export interface FollowOptions {
  follow: boolean;
  localHost: string;
  /** How long one blocking read waits before the job's liveness is checked (default 2 s). */
  blockMs?: number;
}

/**
 * Prints a job's log records and, with `follow`, keeps streaming them as they are pushed (XREAD
 * BLOCK on the job's stream) until the terminal status record. Whenever a read times out it
 * checks the job: a runner that is gone gets the job marked `crashed` (which writes the terminal
 * record this loop then reads), so a follow never waits forever on a dead job. `blocking` must be
 * a connection of its own: it sits in XREAD BLOCK.
 */
export async function readOrFollow(
  store: JobStore,
  blocking: Redis,
  id: string,
  q: LogQuery,
  onRecord: (rec: JobLogRecord) => void,
  opts: FollowOptions,
): Promise<FollowResult> {
  const job = await store.get(id);
  if (!job) throw new NotFoundError(`no job ${id}`, { job: id });
  const key = store.keys.log(id);
  let lastId = '0-0';
  let terminal: JobLogRecord | null = null;
  const take = (entries: StreamEntry[]) => {
    const records = decodeEntries(store.codec, entries);
    entries.forEach(([entryId], i) => {
      lastId = entryId;
      const rec = records[i];
      if (rec.kind === 'status' && rec.status && isTerminal(rec.status)) terminal = rec;
      if (recordMatches(rec, q)) onRecord(rec);
    });
  };
  take((await store.connection.xrange(key, '-', '+')) as StreamEntry[]);
  if (!opts.follow || terminal) return result(terminal);

  const blockMs = opts.blockMs ?? 2000;
  for (;;) {
    const res = (await blocking.xread('BLOCK', blockMs, 'STREAMS', key, lastId)) as
      [string, StreamEntry[]][] | null;
    if (res?.length) {
      take(res[0][1]);
      if (terminal) return result(terminal);
      continue;
    }
    const now: JobMeta | null = await store.get(id);
    if (!now) throw new NotFoundError(`job ${id} was removed while following it`, { job: id });
    if (isTerminal(now.status)) {
      take((await store.connection.xrange(key, `(${lastId}`, '+')) as StreamEntry[]);
      return terminal
        ? result(terminal)
        : { terminal: null, message: `job ${id} ended ${now.status} without a terminal log record` };
    }
    if (now.status !== 'queued' && !(await runnerAlive(store, now, opts.localHost))) {
      await crashJob(store, now, 'its runner is gone (found while following its log)', opts.localHost);
    }
  }
}

function result(terminal: JobLogRecord | null): FollowResult {
  if (terminal?.status === 'crashed')
    return { terminal, message: `job crashed: ${terminal.reason ?? 'its runner died'}` };
  return { terminal };
}
