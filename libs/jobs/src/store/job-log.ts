import type Redis from 'ioredis';
import { EnvelopeCodec, isRetryable, JobLogRecord, Schemas } from '@coordbus/envelope';
import { keepRecord } from '../domain/outcome';
import { JOB_OUTAGE_WAIT_MS, outagePauseMs } from './outage';

/** Longest line stored in one record; longer lines are split (the codec caps an entry at 64 KiB). */
export const MAX_LINE_CHARS = 16 * 1024;

/**
 * Appends one job's stdout/stderr/status records to its log stream. The process running the job
 * is the stream's only writer while it runs, so it allocates `seq` itself (the entry id is
 * `<seq>-0`, which makes Redis refuse any out-of-order write) and batches XADDs per tick.
 * Sampled-out records still take a seq, so gaps show what was dropped.
 */
export class JobLogWriter {
  private buffer: JobLogRecord[] = [];
  private flushing: Promise<void> = Promise.resolve();
  private scheduled = false;
  private failed: Error | undefined;
  written = 0;
  dropped = 0;
  /** Bytes of output stored so far (what the per-job cap counts). */
  storedBytes = 0;
  /** Output past the per-job cap: counted, not stored. */
  readonly overCap = { lines: 0, bytes: 0 };

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly codec: EnvelopeCodec,
    private seq: number,
    private readonly options: {
      sampleEvery: number;
      maxLen: number;
      /** Per-job cap of stored output bytes (0: none); later lines are only counted. */
      maxBytes?: number;
      redact?: (line: string) => string;
      onError?: (err: Error) => void;
      /** How long a write waits out a Redis outage before the rest of the log is given up (default JOB_OUTAGE_WAIT_MS). */
      outageWaitMs?: number;
    },
  ) {}

  /** The seq the next record will take. */
  get nextSeq(): number {
    return this.seq;
  }

  /** Takes the next seq for a record written elsewhere (a status record written by a store script). */
  reserve(): number {
    return this.seq++;
  }

  line(kind: 'stdout' | 'stderr', text: string): void {
    const clean = this.options.redact ? this.options.redact(text) : text;
    const bytes = Buffer.byteLength(clean) + 1;
    const cap = this.options.maxBytes ?? 0;
    if (cap > 0 && this.storedBytes + bytes > cap) {
      if (!this.overCap.lines) {
        this.push({
          seq: this.seq++,
          ts: new Date().toISOString(),
          kind: 'stderr',
          line: `[coordbus] this job's log reached its cap of ${cap} bytes: further output is counted, not stored`,
        });
      }
      this.overCap.lines++;
      this.overCap.bytes += bytes;
      return;
    }
    this.storedBytes += bytes;
    for (let i = 0; i === 0 || i < clean.length; i += MAX_LINE_CHARS) {
      const seq = this.seq++;
      if (!keepRecord(seq, kind, this.options.sampleEvery)) {
        this.dropped++;
        continue;
      }
      this.push({ seq, ts: new Date().toISOString(), kind, line: clean.slice(i, i + MAX_LINE_CHARS) });
    }
  }

  status(rec: Omit<JobLogRecord, 'seq' | 'ts' | 'kind'>): void {
    this.push({ seq: this.seq++, ts: new Date().toISOString(), kind: 'status', ...rec });
  }

  private push(rec: JobLogRecord): void {
    this.buffer.push(rec);
    if (this.buffer.length >= 256) void this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setTimeout(() => void this.flush(), 10);
    }
  }

  /** Writes everything buffered; resolves when it is in Redis. */
  flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.buffer;
    this.buffer = [];
    if (batch.length) {
      this.flushing = this.flushing.then(() => this.write(batch));
    }
    return this.flushing;
  }

  private async write(batch: JobLogRecord[]): Promise<void> {
    let pending = batch;
    const deadline = Date.now() + (this.options.outageWaitMs ?? JOB_OUTAGE_WAIT_MS);
    for (let attempt = 1; !this.failed && pending.length; attempt++) {
      let err: unknown;
      try {
        if (attempt > 1) pending = await this.unwritten(pending);
        if (!pending.length) return;
        const pipe = this.redis.pipeline();
        for (const rec of pending) {
          const fields = this.codec.encode(Schemas.jobLog, rec, { validate: false });
          pipe.xadd(this.key, 'MAXLEN', '~', this.options.maxLen, `${rec.seq}-0`, ...fields);
        }
        const res = (await pipe.exec()) ?? [];
        const first = res.findIndex(([e]) => e);
        if (first < 0) {
          this.written += pending.length;
          return;
        }
        this.written += first;
        pending = pending.slice(first);
        err = res[first][0];
      } catch (e) {
        err = e;
      }
      if (isRetryable(err) && Date.now() < deadline) {
        // Redis full or restarting: the lines wait (in order) instead of being dropped.
        await new Promise((r) => setTimeout(r, outagePauseMs(attempt)));
        continue;
      }
      // Otherwise usually: someone else wrote a terminal record (a reconcile decided this runner was dead).
      this.failed = err as Error;
      this.options.onError?.(err as Error);
    }
  }

  /** The records of `batch` not in the stream yet (an attempt whose reply was lost may have written some). */
  private async unwritten(batch: JobLogRecord[]): Promise<JobLogRecord[]> {
    const last = (await this.redis.xrevrange(this.key, '+', '-', 'COUNT', 1)) as StreamEntry[];
    const top = last.length ? Number(last[0][0].split('-')[0]) : 0;
    return batch.filter((r) => r.seq > top);
  }
}

export interface LogQuery {
  /** Only this seq. */
  seq?: number;
  /** Only records after this seq. */
  sinceSeq?: number;
  /** Only records at or after this time (ms since epoch). */
  sinceMs?: number;
  kinds?: ReadonlySet<JobLogRecord['kind']>;
}

export function recordMatches(rec: JobLogRecord, q: LogQuery): boolean {
  if (q.seq !== undefined && rec.seq !== q.seq) return false;
  if (q.sinceSeq !== undefined && rec.seq <= q.sinceSeq) return false;
  if (q.sinceMs !== undefined && Date.parse(rec.ts) < q.sinceMs) return false;
  if (q.kinds && !q.kinds.has(rec.kind)) return false;
  return true;
}

export type StreamEntry = [id: string, fields: string[]];

/** Decodes log stream entries (a newer schema major throws SchemaMismatchError). */
export function decodeEntries(codec: EnvelopeCodec, entries: StreamEntry[]): JobLogRecord[] {
  return entries.map(([, fields]) => codec.decode(Schemas.jobLog, fields));
}

/** Reads a job's records from `start` (a stream id bound). */
export async function readLog(
  redis: Redis,
  key: string,
  codec: EnvelopeCodec,
  q: LogQuery = {},
): Promise<JobLogRecord[]> {
  const start = q.seq !== undefined ? `${q.seq}-0` : q.sinceSeq !== undefined ? `${q.sinceSeq + 1}-0` : '-';
  const end = q.seq !== undefined ? `${q.seq}-0` : '+';
  const entries = (await redis.xrange(key, start, end)) as StreamEntry[];
  return decodeEntries(codec, entries).filter((r) => recordMatches(r, q));
}
