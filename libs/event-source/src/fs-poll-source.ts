import { readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { CoordEvent, EnvelopeCodec, Schemas, TxKind, UnavailableError } from '@coordbus/envelope';
import { deterministicUlid } from './deterministic-ulid';
import { eventKey, resolveMaxBatch, SentinelEventSource, SourceOptions, throwIfAborted } from './source';

/** What the source remembers of one `sessions/<id>.json`. */
export interface SessionFileState {
  session_id: string;
  role: string;
  task: string;
  blob: unknown;
  phase: string | null;
  registered_at: string;
  last_heartbeat: string;
}

/** What the source remembers of one `locks/<resource>/record.json`. */
export interface LockFileState {
  resource: string;
  owner_session: string;
  acquired_at: string;
  expires_at: string | null;
  reason: string | null;
}

/** The coord root as of one tick: the thing two ticks are diffed on. */
export interface CoordSnapshot {
  sessions: Record<string, SessionFileState>;
  locks: Record<string, LockFileState>;
  /** inbox session id -> msg id -> envelope fields. */
  inbox: Record<string, Record<string, InboxFileState>>;
  /** order id -> order. */
  dispatch: Record<string, DispatchFileState>;
}

/** The envelope of one `messages/inbox-<id>/<msg_id>.json` (the body is never kept). */
export interface InboxFileState {
  mtime_ms: number;
  kind: string;
  from_session: string | null;
  subject: string | null;
}

/** One `dispatch-orders/<order_id>.json`. */
export interface DispatchFileState {
  mtime_ms: number;
  assignee: string;
  ticket: string;
}

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

const EMPTY: CoordSnapshot = { sessions: {}, locks: {}, inbox: {}, dispatch: {} };

/** Event order inside one tick: state appears, changes, then goes (a tick flattens time). */
const KIND_ORDER: Record<TxKind, number> = {
  'session.register': 0,
  'session.heartbeat': 1,
  'lock.release': 2,
  'lock.acquire': 3,
  'inbox.deliver': 4,
  'dispatch.issue': 5,
  'session.dereg': 6,
};

function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Accepts an ISO string or epoch seconds/ms; returns a canonical ISO string or null. */
function toIso(value: unknown): string | null {
  if (typeof value === 'number' && Number.isFinite(value)) {
    return new Date(value < 1e12 ? value * 1000 : value).toISOString();
  }
  if (typeof value === 'string' && value.length) {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? null : new Date(ms).toISOString();
  }
  return null;
}

class Malformed extends Error {}

function requireObject(raw: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new Malformed(`not JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Malformed('not a JSON object');
  return parsed as Record<string, unknown>;
}

function optString(o: Record<string, unknown>, key: string): string | null {
  const v = o[key];
  return typeof v === 'string' ? v : null;
}

function needString(o: Record<string, unknown>, key: string): string {
  const v = o[key];
  if (typeof v !== 'string' || !v.length) throw new Malformed(`${key}: missing or not a non-empty string`);
  return v;
}

/**
 * The filesystem-polling source (seed 002's `FsPollSource`): each tick it reads the coord root,
 * diffs it against the previous tick and turns the differences into typed events.
 *
 * - `sessions/<id>.json` appears / disappears -> `session.register` / `session.dereg`;
 *   `last_heartbeat` or `phase` changes -> `session.heartbeat`.
 * - `locks/<resource>/record.json` appears -> `lock.acquire`; disappears -> `lock.release`;
 *   owner changes -> `lock.release` (`stolen`, or `expired`) then `lock.acquire`.
 * - a new file in `messages/inbox-<id>/` -> `inbox.deliver` (envelope fields only, never the body).
 * - a new `dispatch-orders/<order_id>.json` -> `dispatch.issue`.
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
  private readonly decodeResource: (dir: string) => string;
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
    this.decodeResource =
      options.decodeResource ??
      ((d) => {
        try {
          return decodeURIComponent(d);
        } catch {
          return d;
        }
      });
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
    const prev = this.committed ?? EMPTY;
    const next = await this.readSnapshot(prev);
    this.stats.scans++;
    const events = this.diff(prev, next);
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

  private async listDir(path: string): Promise<string[]> {
    try {
      return (await readdir(path)).sort();
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
  }

  /** Reads a file; null if it vanished meanwhile. */
  private async readText(path: string): Promise<{ text: string; mtimeMs: number } | null> {
    try {
      const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
      return { text, mtimeMs: st.mtimeMs };
    } catch (err) {
      if (isNotFound(err) || (err as NodeJS.ErrnoException).code === 'EISDIR') return null;
      // EACCES, EIO...: this one file is unreadable now; skip and count it, keep its last state.
      throw new Malformed(`unreadable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }

  private static isDataFile(name: string): boolean {
    // Writers use temp file + rename: dotfiles and *.tmp are in-progress writes, not state.
    return name.endsWith('.json') && !name.startsWith('.');
  }

  private async readSnapshot(prev: CoordSnapshot): Promise<CoordSnapshot> {
    const next: CoordSnapshot = { sessions: {}, locks: {}, inbox: {}, dispatch: {} };

    const sessionsDir = join(this.root, 'sessions');
    for (const name of await this.listDir(sessionsDir)) {
      if (!FsPollSource.isDataFile(name)) continue;
      const id = name.slice(0, -'.json'.length);
      const path = join(sessionsDir, name);
      try {
        const file = await this.readText(path);
        if (!file) continue;
        const o = requireObject(file.text);
        const last = toIso(o.last_heartbeat);
        if (!last) throw new Malformed('last_heartbeat: missing or not a timestamp');
        const sid = optString(o, 'session_id') ?? id;
        next.sessions[sid] = {
          session_id: sid,
          role: optString(o, 'role') ?? '',
          task: optString(o, 'task') ?? '',
          blob: o.blob === undefined ? null : o.blob,
          phase: optString(o, 'phase'),
          registered_at: toIso(o.registered_at) ?? last,
          last_heartbeat: last,
        };
      } catch (err) {
        if (!(err instanceof Malformed)) throw err;
        this.malformed(path, err.message);
        if (prev.sessions[id]) next.sessions[id] = prev.sessions[id];
      }
    }

    const locksDir = join(this.root, 'locks');
    for (const dir of await this.listDir(locksDir)) {
      if (dir.startsWith('.')) continue;
      const resource = this.decodeResource(dir);
      const path = join(locksDir, dir, 'record.json');
      try {
        const file = await this.readText(path);
        if (!file) continue;
        const o = requireObject(file.text);
        const owner = needString(o, 'owner_session_id');
        next.locks[resource] = {
          resource,
          owner_session: owner,
          acquired_at: toIso(o.acquired_at) ?? new Date(file.mtimeMs).toISOString(),
          expires_at: toIso(o.expires_at),
          reason: optString(o, 'reason'),
        };
      } catch (err) {
        if (!(err instanceof Malformed)) throw err;
        this.malformed(path, err.message);
        if (prev.locks[resource]) next.locks[resource] = prev.locks[resource];
      }
    }

    const messagesDir = join(this.root, 'messages');
    for (const dir of await this.listDir(messagesDir)) {
      if (!dir.startsWith('inbox-')) continue;
      const to = dir.slice('inbox-'.length);
      const seen: Record<string, InboxFileState> = {};
      for (const name of await this.listDir(join(messagesDir, dir))) {
        if (!FsPollSource.isDataFile(name)) continue;
        const msgId = name.slice(0, -'.json'.length);
        const known = prev.inbox[to]?.[msgId];
        if (known !== undefined) {
          seen[msgId] = known;
          continue;
        }
        try {
          const file = await this.readText(join(messagesDir, dir, name));
          if (!file) continue;
          const o = requireObject(file.text);
          seen[msgId] = {
            mtime_ms: file.mtimeMs,
            kind: optString(o, 'kind') ?? 'message',
            from_session: optString(o, 'from_session') ?? optString(o, 'from'),
            subject: optString(o, 'subject'),
          };
        } catch (err) {
          if (!(err instanceof Malformed)) throw err;
          this.malformed(join(messagesDir, dir, name), err.message);
        }
      }
      if (Object.keys(seen).length) next.inbox[to] = seen;
    }

    const ordersDir = join(this.root, 'dispatch-orders');
    for (const name of await this.listDir(ordersDir)) {
      if (!FsPollSource.isDataFile(name)) continue;
      const orderId = name.slice(0, -'.json'.length);
      if (prev.dispatch[orderId] !== undefined) {
        next.dispatch[orderId] = prev.dispatch[orderId];
        continue;
      }
      const path = join(ordersDir, name);
      try {
        const file = await this.readText(path);
        if (!file) continue;
        const o = requireObject(file.text);
        next.dispatch[orderId] = {
          mtime_ms: file.mtimeMs,
          assignee: needString(o, 'assignee'),
          ticket: needString(o, 'ticket'),
        };
      } catch (err) {
        if (!(err instanceof Malformed)) throw err;
        this.malformed(path, err.message);
      }
    }
    return next;
  }

  // ---- diffing ----------------------------------------------------------------------------

  private diff(prev: CoordSnapshot, next: CoordSnapshot): CoordEvent[] {
    const now = this.now();
    const nowIso = new Date(now).toISOString();
    const out: CoordEvent[] = [];
    const emit = (
      kind: TxKind,
      timeMs: number,
      ts: string,
      sessionId: string | null,
      resource: string | null,
      payload: Record<string, unknown>,
      identity: readonly (string | number | null)[],
    ) => {
      const event = {
        tx_id: deterministicUlid(timeMs, kind, ...identity),
        tx_kind: kind,
        ts,
        ingress_ts: null,
        source: this.name,
        session_id: sessionId,
        resource,
        payload,
      };
      try {
        out.push(this.codec.validate(Schemas.coordEvent, event));
      } catch (err) {
        this.malformed(`${kind}:${sessionId ?? resource ?? ''}`, (err as Error).message);
      }
    };

    const removedSessions = new Set<string>();
    for (const [id, s] of Object.entries(next.sessions)) {
      const before = prev.sessions[id];
      if (!before || before.registered_at !== s.registered_at) {
        if (before) this.emitDereg(emit, before, 'replaced', nowIso);
        emit(
          'session.register',
          Date.parse(s.registered_at),
          s.registered_at,
          id,
          null,
          { role: s.role, task: s.task, blob: s.blob },
          [id, s.registered_at],
        );
      } else if (before.last_heartbeat !== s.last_heartbeat || before.phase !== s.phase) {
        emit(
          'session.heartbeat',
          Date.parse(s.last_heartbeat),
          s.last_heartbeat,
          id,
          null,
          { last_heartbeat: s.last_heartbeat, phase: s.phase },
          [id, s.registered_at, s.last_heartbeat, s.phase],
        );
      }
    }
    for (const [id, s] of Object.entries(prev.sessions)) {
      if (next.sessions[id]) continue;
      removedSessions.add(id);
      const stale = now - Date.parse(s.last_heartbeat) > this.ttlMs;
      this.emitDereg(emit, s, stale ? 'ttl-expired' : 'explicit', nowIso);
    }

    const resources = new Set([...Object.keys(prev.locks), ...Object.keys(next.locks)]);
    for (const resource of [...resources].sort()) {
      const before = prev.locks[resource];
      const after = next.locks[resource];
      const same =
        before &&
        after &&
        before.owner_session === after.owner_session &&
        before.acquired_at === after.acquired_at;
      if (same) continue;
      if (before) {
        const expired = before.expires_at !== null && Date.parse(before.expires_at) <= now;
        let reason: string;
        if (after && after.owner_session !== before.owner_session) reason = expired ? 'expired' : 'stolen';
        else if (!after && removedSessions.has(before.owner_session)) {
          const owner = prev.sessions[before.owner_session];
          reason =
            owner && now - Date.parse(owner.last_heartbeat) > this.ttlMs ? 'owner-evicted' : 'owner-dereg';
        } else reason = expired ? 'expired' : 'unlock';
        emit(
          'lock.release',
          now,
          nowIso,
          before.owner_session,
          resource,
          { resource, owner_session: before.owner_session, reason },
          [resource, before.owner_session, before.acquired_at],
        );
      }
      if (after) {
        const payload: Record<string, unknown> = { resource, owner_session: after.owner_session };
        if (after.expires_at) payload.expires_at = after.expires_at;
        if (after.reason) payload.reason = after.reason;
        emit(
          'lock.acquire',
          Date.parse(after.acquired_at),
          after.acquired_at,
          after.owner_session,
          resource,
          payload,
          [resource, after.owner_session, after.acquired_at],
        );
      }
    }

    for (const [to, msgs] of Object.entries(next.inbox)) {
      for (const [msgId, m] of Object.entries(msgs)) {
        if (prev.inbox[to]?.[msgId]) continue;
        const payload: Record<string, unknown> = { to_session: to, msg_id: msgId, kind: m.kind };
        if (m.from_session) payload.from_session = m.from_session;
        if (m.subject !== null) payload.subject = m.subject;
        const ts = new Date(m.mtime_ms).toISOString();
        emit('inbox.deliver', m.mtime_ms, ts, to, null, payload, [to, msgId]);
      }
    }
    for (const [orderId, o] of Object.entries(next.dispatch)) {
      if (prev.dispatch[orderId]) continue;
      const ts = new Date(o.mtime_ms).toISOString();
      emit(
        'dispatch.issue',
        o.mtime_ms,
        ts,
        o.assignee,
        null,
        { order_id: orderId, assignee: o.assignee, ticket: o.ticket },
        [orderId],
      );
    }

    return out.sort((a, b) => KIND_ORDER[a.tx_kind] - KIND_ORDER[b.tx_kind]);
  }

  private emitDereg(
    emit: (
      k: TxKind,
      t: number,
      ts: string,
      s: string | null,
      r: string | null,
      p: Record<string, unknown>,
      id: readonly (string | number | null)[],
    ) => void,
    s: SessionFileState,
    reason: string,
    nowIso: string,
  ): void {
    emit('session.dereg', Date.parse(s.last_heartbeat), nowIso, s.session_id, null, { reason }, [
      s.session_id,
      s.registered_at,
    ]);
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
      if (!isNotFound(err))
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
