import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { CoordEvent, EnvelopeCodec, UnavailableError } from '@coordbus/envelope';
import { CoordSnapshot, EMPTY_COORD_SNAPSHOT, readCoordRoot } from '@coordbus/coord';
import { diffCoordSnapshots } from './fs-poll-diff';
import { eventKey, resolveMaxBatch, SentinelEventSource, SourceOptions, throwIfAborted } from './source';

export type {
  CoordSnapshot,
  DispatchFileState,
  InboxFileState,
  LockFileState,
  SessionFileState,
} from '@coordbus/coord';

export interface FsPollSourceOptions extends SourceOptions {
  /** The coord file root (`COORD_ROOT`). */
  root: string;
  /** The source name (default `fs-poll`): keep it stable, it is half of the dedup key. */
  name?: string;
  /** Session TTL in ms (`COORD_SESSION_TTL`): a removed session older than this is reported as `ttl-expired`. */
  sessionTtlMs?: number;
  /**
   * Where to keep the last fully committed snapshot between runs (optional). With it, a restart
   * diffs against what was seen before the stop, so sessions removed meanwhile still yield a
   * `session.dereg`; without it, the first tick re-emits the current state (deduped downstream).
   */
  statePath?: string;
  /** Turns a `locks/<dir>` name into the resource name (default: `decodeURIComponent`). */
  decodeResource?: (dirName: string) => string;
  /** Called for each skipped file (half-written, malformed); it is retried on the next tick. */
  onMalformed?: (path: string, reason: string) => void;
  /** Clock, for tests. */
  now?: () => number;
}

/** Counters a service turns into metrics. */
export interface FsPollStats {
  scans: number;
  malformed: number;
  emitted: number;
}

/**
 * The filesystem-polling source (seed 002's `FsPollSource`): each tick it reads the coord root
 * (`readCoordRoot`, in libs/coord beside the writer), diffs it against the previous tick
 * (`diffCoordSnapshots`, a pure function) and turns the differences into typed events.
 *
 * A half-written or malformed file is skipped, counted and retried next tick; its previous state
 * (if any) is kept so a torn write never looks like a removal. A removed directory is an empty
 * one. `tx_id`s are derived from the change itself (see `deterministicUlid`), so re-emitting after
 * a restart, or several replicas watching one root, yields the same `(source, tx_id)` keys.
 * Release and dereg reasons are inferred from the files (the files do not record them).
 */
export class FsPollSource implements SentinelEventSource {
  readonly name: string;
  readonly stats: FsPollStats = { scans: 0, malformed: 0, emitted: 0 };
  private readonly root: string;
  private readonly maxBatch: number;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly codec = new EnvelopeCodec();
  /** The snapshot whose events are all committed (persisted to `statePath`). */
  private committed: CoordSnapshot | null = null;
  /** The snapshot the buffered events lead to. */
  private latest: CoordSnapshot | null = null;
  private buffer: CoordEvent[] = [];
  private scanning: Promise<void> | null = null;
  private loaded = false;

  constructor(private readonly options: FsPollSourceOptions) {
    if (!options.root) throw new RangeError('FsPollSource needs a coord root (COORD_ROOT)');
    this.root = options.root;
    this.name = options.name ?? 'fs-poll';
    this.maxBatch = resolveMaxBatch(options.maxBatch);
    this.ttlMs = options.sessionTtlMs ?? 300_000;
    this.now = options.now ?? Date.now;
  }

  async poll(signal?: AbortSignal): Promise<CoordEvent[]> {
    throwIfAborted(signal);
    // Scan only once everything from the previous scan is committed: the buffer is the backlog,
    // and the persisted snapshot always matches what consumers have handled.
    if (!this.buffer.length) {
      // Concurrent polls share one scan, so an abandoned poll's scan result is never lost or doubled.
      this.scanning ??= this.scan().finally(() => (this.scanning = null));
      await this.scanning;
    }
    throwIfAborted(signal);
    return this.buffer.slice(0, this.maxBatch);
  }

  async commit(events: readonly CoordEvent[]): Promise<void> {
    if (!events.length || !this.buffer.length) return;
    const done = new Set(events.filter((e) => e.source === this.name).map(eventKey));
    this.buffer = this.buffer.filter((e) => !done.has(eventKey(e)));
    if (!this.buffer.length && this.latest) {
      this.committed = this.latest;
      await this.persist();
    }
  }

  async backlog(): Promise<number> {
    return Math.max(0, this.buffer.length - this.maxBatch);
  }

  async close(): Promise<void> {
    await this.scanning?.catch(() => undefined);
  }

  // ---- scanning ---------------------------------------------------------------------------

  private async scan(): Promise<void> {
    if (!this.loaded) {
      this.committed = await this.load();
      this.loaded = true;
    }
    try {
      const st = await stat(this.root);
      if (!st.isDirectory()) throw new Error('not a directory');
    } catch (err) {
      throw new UnavailableError(`coord root ${this.root} is unreadable: ${(err as Error).message}`, {
        root: this.root,
      });
    }
    const prev = this.committed ?? EMPTY_COORD_SNAPSHOT;
    const next = await readCoordRoot(this.root, prev, {
      decodeResource: this.options.decodeResource,
      onMalformed: (path, reason) => this.malformed(path, reason),
    });
    this.stats.scans++;
    const events = diffCoordSnapshots(prev, next, {
      source: this.name,
      now: this.now(),
      sessionTtlMs: this.ttlMs,
      codec: this.codec,
      onInvalid: (what, reason) => this.malformed(what, reason),
    });
    this.stats.emitted += events.length;
    this.latest = next;
    if (events.length) this.buffer = events;
    else if (this.committed !== next) {
      this.committed = next;
      if (JSON.stringify(prev) !== JSON.stringify(next)) await this.persist();
    }
  }

  private malformed(path: string, reason: string): void {
    this.stats.malformed++;
    this.options.onMalformed?.(path, reason);
  }

  // ---- persistence ------------------------------------------------------------------------

  private async load(): Promise<CoordSnapshot | null> {
    if (!this.options.statePath) return null;
    try {
      const o = JSON.parse(await readFile(this.options.statePath, 'utf8')) as CoordSnapshot;
      if (
        o &&
        typeof o.sessions === 'object' &&
        typeof o.locks === 'object' &&
        typeof o.inbox === 'object' &&
        typeof o.dispatch === 'object'
      )
        return o;
      this.malformed(
        this.options.statePath,
        'state file has the wrong shape; starting from an empty snapshot',
      );
    } catch (err) {
      if ((err as NodeJS.ErrnoException)?.code !== 'ENOENT')
        this.malformed(
          this.options.statePath,
          `state file unreadable (${(err as Error).message}); starting from an empty snapshot`,
        );
    }
    return null;
  }

  private async persist(): Promise<void> {
    const path = this.options.statePath;
    if (!path || !this.committed) return;
    const tmp = join(path, '..', `.${basename(path)}.${process.pid}.tmp`);
    await writeFile(tmp, JSON.stringify(this.committed));
    await rename(tmp, path);
  }
}
