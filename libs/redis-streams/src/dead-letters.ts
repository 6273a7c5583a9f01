import type Redis from 'ioredis';
import {
  DEAD_LETTER_SUFFIX,
  DeadLetterEntry,
  EnvelopeCodec,
  InvalidError,
  Keyspace,
  Schemas,
  type Schema,
} from '@coordbus/envelope';
import { bindCommand } from '@coordbus/lua';
import { COMMANDS } from './commands';
import { compareIds } from './consumer-group';

/** Which dead letters an operator means: by stream, by reason, by id range. */
export interface DeadLetterFilter {
  /** A source stream or its dead-letter stream (full key); default every source coordbus consumes. */
  stream?: string;
  /** Case-insensitive substring of the reason, or an exact error code (`Invalid`, `Internal`, ...). */
  reason?: string;
  /** Dead-letter entry ids, inclusive (`-`/`+` or omitted: unbounded). */
  from?: string;
  to?: string;
  /** At most this many (default 1000). */
  limit?: number;
}

/** One dead letter as an operator sees it: where it sits, and what the consumer recorded. */
export interface DeadLetterView {
  dead_stream: string;
  id: string;
  source_stream: string;
  /** The decoded record; null when the dead-letter entry itself cannot be decoded. */
  entry: DeadLetterEntry | null;
  /** Why `entry` is null. */
  problem?: string;
}

export type RedriveResult =
  { id: string; status: 'redriven'; new_id: string } | { id: string; status: 'missing' };

const ID = /^(\d+)(-\d+)?$/;

/**
 * The operator's side of dead-letter streams (`coordbus dead`, the console): list and read them,
 * re-drive one back to its source (redrive-2.lua: XADD to the source and XDEL from the
 * dead-letter stream in one script, so a crash before it leaves the letter, a crash after it
 * has moved it, and a second replay finds nothing — exactly once), or drop it.
 */
export class DeadLetters {
  private readonly redrive: ReturnType<typeof bindCommand<string[]>>;

  constructor(
    private readonly redis: Redis,
    private readonly keyspace: Keyspace,
    private readonly codec = new EnvelopeCodec(),
    private readonly sourceMaxLen = 1_000_000,
  ) {
    this.redrive = bindCommand<string[]>(redis, COMMANDS.redrive);
  }

  /** The streams whose dead letters coordbus keeps (each one's consumer dead-letters to `<stream>:dead`). */
  get sources(): string[] {
    return this.keyspace.archivedStreams.filter((s) => !s.endsWith(DEAD_LETTER_SUFFIX));
  }

  /** The dead-letter stream `stream` names (a source or its `:dead`); refuses anything else. */
  deadStreamOf(stream: string): string {
    const source = stream.endsWith(DEAD_LETTER_SUFFIX) ? stream.slice(0, -DEAD_LETTER_SUFFIX.length) : stream;
    if (!this.sources.includes(source)) {
      throw new InvalidError(`${JSON.stringify(stream)} is not a stream coordbus dead-letters`, [
        `stream: one of ${this.sources.join(', ')} (or its ${DEAD_LETTER_SUFFIX})`,
      ]);
    }
    return this.keyspace.deadLetter(source);
  }

  async list(filter: DeadLetterFilter = {}): Promise<DeadLetterView[]> {
    for (const id of [filter.from, filter.to]) {
      if (id !== undefined && id !== '-' && id !== '+' && !ID.test(id)) {
        throw new InvalidError(`${JSON.stringify(id)} is not a stream entry id`, ['id: <ms>[-<seq>]']);
      }
    }
    const limit = filter.limit ?? 1000;
    const streams = filter.stream
      ? [this.deadStreamOf(filter.stream)]
      : this.sources.map((s) => this.keyspace.deadLetter(s));
    const out: DeadLetterView[] = [];
    for (const dead of streams) {
      const entries = (await this.redis.xrange(
        dead,
        filter.from ?? '-',
        filter.to ?? '+',
        'COUNT',
        limit,
      )) as [string, string[]][];
      for (const [id, fields] of entries) {
        const view = this.view(dead, id, fields);
        if (filter.reason && !matchesReason(view, filter.reason)) continue;
        out.push(view);
      }
    }
    out.sort((a, b) => compareIds(a.id, b.id));
    return out.slice(0, limit);
  }

  /** One dead letter by id (on `stream`, or wherever it is). */
  async get(id: string, stream?: string): Promise<DeadLetterView | null> {
    if (!ID.test(id))
      throw new InvalidError(`${JSON.stringify(id)} is not a stream entry id`, ['id: <ms>-<seq>']);
    const found = await this.list({ stream, from: id, to: id });
    if (found.length > 1) {
      throw new InvalidError(`dead letter ${id} is on several streams; name one with --stream`, [
        `stream: one of ${found.map((f) => f.dead_stream).join(', ')}`,
      ]);
    }
    return found[0] ?? null;
  }

  /** Appends the letter's original fields to its source stream and removes it, atomically. */
  async replay(view: DeadLetterView): Promise<RedriveResult> {
    if (!view.entry)
      throw new InvalidError(`dead letter ${view.id} cannot be decoded: ${view.problem}`, ['entry']);
    const r = await this.redrive(
      [view.dead_stream, view.source_stream],
      // redrive-2.lua takes the fields as a flat [name, value, ...] array, in their order.
      [view.id, JSON.stringify(Object.entries(view.entry.fields).flat()), this.sourceMaxLen],
    );
    return r[0] === 'redriven'
      ? { id: view.id, status: 'redriven', new_id: r[1] }
      : { id: view.id, status: 'missing' };
  }

  /** Removes the letter for good; false when it was gone already. */
  async drop(view: DeadLetterView): Promise<boolean> {
    return (await this.redis.xdel(view.dead_stream, view.id)) === 1;
  }

  private view(dead: string, id: string, fields: string[]): DeadLetterView {
    const source_stream = dead.slice(0, -DEAD_LETTER_SUFFIX.length);
    try {
      const entry = this.codec.decode(Schemas.deadLetter as Schema<DeadLetterEntry>, fields);
      return { dead_stream: dead, id, source_stream, entry };
    } catch (err) {
      return { dead_stream: dead, id, source_stream, entry: null, problem: (err as Error).message };
    }
  }
}

function matchesReason(view: DeadLetterView, reason: string): boolean {
  if (!view.entry) return false;
  return view.entry.error_code === reason || view.entry.reason.toLowerCase().includes(reason.toLowerCase());
}
