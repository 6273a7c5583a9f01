import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { SessionRecord } from './types';

/*
 * The reading side of the COORD_ROOT file layout that FileMirror (file-mirror.ts) writes, in the
 * same lib so one place owns the layout:
 *
 *   sessions/<id>.json                 session_id, pid, host, role, task, blob, phase, registered_at, last_heartbeat
 *   locks/<resource>/record.json       resource, owner_session_id, owner_pid, acquired_at, expires_at, reason
 *   locks/<resource>/owner             the owner session id, one line
 *   messages/inbox-<id>/<msg_id>.json  the message
 *   dispatch-orders/<order_id>.json    order_id, assignee, ticket (+ issued_by, issued_at)
 *
 * Files written by other tools are read leniently: timestamps as ISO strings or epoch
 * seconds/ms, a missing session_id taken from the file name, `from` for `from_session`.
 */

/** The directories of the layout, relative to the root. */
export const COORD_LAYOUT = {
  sessions: 'sessions',
  locks: 'locks',
  messages: 'messages',
  inboxPrefix: 'inbox-',
  dispatch: 'dispatch-orders',
  lockRecord: 'record.json',
  lockOwner: 'owner',
} as const;

/** What a reader keeps of one `sessions/<id>.json`. */
export type SessionFileState = Pick<
  SessionRecord,
  'session_id' | 'role' | 'task' | 'blob' | 'phase' | 'registered_at' | 'last_heartbeat'
>;

/** What a reader keeps of one `locks/<resource>/record.json`. */
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

/** An empty root. */
export const EMPTY_COORD_SNAPSHOT: CoordSnapshot = { sessions: {}, locks: {}, inbox: {}, dispatch: {} };

export interface ReadCoordRootOptions {
  /** Turns a `locks/<dir>` name into the resource name (default: `decodeURIComponent`). */
  decodeResource?: (dirName: string) => string;
  /** Called for each skipped file (half-written, malformed, unreadable). */
  onMalformed?: (path: string, reason: string) => void;
}

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

function defaultDecode(d: string): string {
  try {
    return decodeURIComponent(d);
  } catch {
    return d;
  }
}

/**
 * Reads the coord root as a snapshot. A half-written or malformed file is skipped and reported
 * (`onMalformed`), and its state in `prev` (if any) is kept, so a torn write never looks like a
 * removal; a missing directory is an empty one. Messages and orders already in `prev` are not
 * read again (they never change once written).
 */
export async function readCoordRoot(
  root: string,
  prev: CoordSnapshot = EMPTY_COORD_SNAPSHOT,
  options: ReadCoordRootOptions = {},
): Promise<CoordSnapshot> {
  return new CoordRootReader(root, options).read(prev);
}

class CoordRootReader {
  private readonly decodeResource: (dir: string) => string;

  constructor(
    private readonly root: string,
    private readonly options: ReadCoordRootOptions,
  ) {
    this.decodeResource = options.decodeResource ?? defaultDecode;
  }

  private malformed(path: string, reason: string): void {
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

  async read(prev: CoordSnapshot): Promise<CoordSnapshot> {
    const next: CoordSnapshot = { sessions: {}, locks: {}, inbox: {}, dispatch: {} };

    const sessionsDir = join(this.root, COORD_LAYOUT.sessions);
    for (const name of await this.listDir(sessionsDir)) {
      if (!CoordRootReader.isDataFile(name)) continue;
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

    const locksDir = join(this.root, COORD_LAYOUT.locks);
    for (const dir of await this.listDir(locksDir)) {
      if (dir.startsWith('.')) continue;
      let resource = this.decodeResource(dir);
      const path = join(locksDir, dir, COORD_LAYOUT.lockRecord);
      try {
        const file = await this.readText(path);
        if (!file) continue;
        const o = requireObject(file.text);
        // The record names its resource (a long name's directory is cut and hashed).
        resource = optString(o, 'resource') ?? resource;
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

    const messagesDir = join(this.root, COORD_LAYOUT.messages);
    for (const dir of await this.listDir(messagesDir)) {
      if (!dir.startsWith(COORD_LAYOUT.inboxPrefix)) continue;
      const to = dir.slice(COORD_LAYOUT.inboxPrefix.length);
      const seen: Record<string, InboxFileState> = {};
      for (const name of await this.listDir(join(messagesDir, dir))) {
        if (!CoordRootReader.isDataFile(name)) continue;
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

    const ordersDir = join(this.root, COORD_LAYOUT.dispatch);
    for (const name of await this.listDir(ordersDir)) {
      if (!CoordRootReader.isDataFile(name)) continue;
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
}
