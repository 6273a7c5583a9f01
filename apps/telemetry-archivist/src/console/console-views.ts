import type { FeedStreamKey } from './feed-cursor';

/**
 * What the console page may see. Every view is built field by field from a whitelist: a
 * registration blob, a job's env or argv, a message body and anything a producer adds later never
 * reach the page unless named here.
 */
export interface FeedItem {
  /** Feed stream key (`ce`, `je`, ...). */
  s: FeedStreamKey;
  /** Stream entry id. */
  id: string;
  /** What it is: coord tx_kind, `op.failed`, `job`, `telemetry`, `activity`, `audit`, `dead`. */
  k: string;
  ts: string | null;
  [field: string]: unknown;
}

export type RawEntry = [id: string, fields: string[]];

const MAX_TEXT = 300;

export function text(v: unknown, max = MAX_TEXT): string | null {
  if (typeof v !== 'string') return null;
  return v.length > max ? `${v.slice(0, max)}…` : v;
}

function int(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function obj(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** The JSON `data` field of a `type v data` entry, or null. */
export function entryData(fields: string[]): Record<string, unknown> | null {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === 'data') {
      try {
        const v: unknown = JSON.parse(fields[i + 1]);
        return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : null;
      } catch {
        return null;
      }
    }
  }
  return null;
}

/** Coord event payload fields the page may show, per kind. */
const COORD_PAYLOAD_FIELDS: Record<string, string[]> = {
  'session.register': ['role', 'task'],
  'session.heartbeat': ['last_heartbeat', 'phase'],
  'session.dereg': ['reason'],
  'lock.acquire': ['resource', 'owner_session', 'expires_at', 'reason', 'stolen_from'],
  'lock.release': ['resource', 'owner_session', 'reason'],
  'inbox.deliver': ['to_session', 'msg_id', 'kind', 'from_session', 'subject'],
  'dispatch.issue': ['order_id', 'assignee', 'ticket'],
};
/** Order life events (issue 14) carry these; any other dispatch.* kind shows the same fields. */
const ORDER_FIELDS = ['order_id', 'assignee', 'ticket', 'note', 'by'];

function coordEventView(id: string, d: Record<string, unknown>): FeedItem | null {
  const kind = text(d.tx_kind, 64);
  if (!kind) return null;
  const payload = obj(d.payload);
  const allowed = COORD_PAYLOAD_FIELDS[kind] ?? (kind.startsWith('dispatch.') ? ORDER_FIELDS : []);
  const view: FeedItem = {
    s: 'ce',
    id,
    k: kind,
    ts: text(d.ts, 40),
    session: text(d.session_id, 200),
    source: text(d.source, 64),
    resource: text(d.resource, 500),
  };
  for (const f of allowed) if (payload[f] !== undefined) view[f] = text(payload[f]) ?? int(payload[f]);
  return view;
}

/** Only failed coord ops reach the page (a lock conflict names both parties in its message). */
function ingestView(id: string, d: Record<string, unknown>): FeedItem | null {
  const f = obj(d.fields);
  const exit = int(f.exit_code);
  if (f.phase !== 'post' || !exit) return null;
  return {
    s: 'ci',
    id,
    k: 'op.failed',
    ts: text(d.ts, 40),
    op: text(f.op, 64),
    session: text(f.session, 200),
    resource: text(f.resource, 500),
    peer: text(f.peer, 200),
    exit_code: exit,
    msg: text(d.msg),
    level: text(d.level, 10),
  };
}

function jobView(id: string, d: Record<string, unknown>): FeedItem | null {
  const job = text(d.job_id, 100);
  if (!job) return null;
  return {
    s: 'je',
    id,
    k: 'job',
    ts: text(d.ts, 40),
    job,
    name: text(d.name, 200),
    hook: text(d.hook, 100),
    worktree: text(d.worktree, 500),
    status: text(d.status, 20),
    exit_code: int(d.exit_code),
    signal: text(d.signal, 20),
    reason: text(d.reason),
    host: text(d.host, 200),
  };
}

function telemetryView(id: string, d: Record<string, unknown>): FeedItem | null {
  const status = text(d.status, 20);
  if (!status || status === 'ok') return null;
  const detail = obj(d.detail);
  return {
    s: 'te',
    id,
    k: 'telemetry',
    ts: text(d.ts, 40),
    source: text(d.source, 200),
    event: text(d.event, 200),
    status,
    duration_ms: int(d.duration_ms),
    line: text(detail.line) ?? text(detail.raw) ?? null,
  };
}

/** One agent hook event; the shape other writers follow is documented on Keyspace.activityStream. */
export function activityView(id: string, d: Record<string, unknown>): FeedItem | null {
  const session = text(d.session_id, 200);
  const event = text(d.event, 64);
  if (!session || !event) return null;
  return {
    s: 'ac',
    id,
    k: 'activity',
    ts: text(d.ts, 40),
    session,
    event,
    tool: text(d.tool, 100),
    path: text(d.path, 500),
    command: text(d.command, 200),
    exit_code: int(d.exit_code),
    message: text(d.message, 300),
  };
}

export function auditView(id: string, d: Record<string, unknown>): FeedItem | null {
  const action = text(d.action, 64);
  if (!action) return null;
  return {
    s: 'au',
    id,
    k: 'audit',
    ts: text(d.ts, 40),
    actor: text(d.actor, 200),
    action,
    target: text(d.target, 500),
    reason: text(d.reason, 500),
    result: text(d.result, 20),
    error: text(d.error, 500),
  };
}

/** A dead letter with its reason; the original fields are not shown (they may hold anything). */
export function deadView(s: FeedStreamKey, id: string, d: Record<string, unknown>): FeedItem | null {
  return {
    s,
    id,
    k: 'dead',
    ts: text(d.ts, 40),
    source_stream: text(d.source_stream, 200),
    entry_id: text(d.entry_id, 40),
    reason: text(d.reason, 500),
    error_code: text(d.error_code, 40),
    delivery_count: int(d.delivery_count),
    group: text(d.group, 100),
  };
}

/** The page's view of one entry of a feed stream, or null when the page does not show it. */
export function feedItem(s: FeedStreamKey, [id, fields]: RawEntry): FeedItem | null {
  const d = entryData(fields);
  if (!d) return null;
  switch (s) {
    case 'ce':
      return coordEventView(id, d);
    case 'ci':
      return ingestView(id, d);
    case 'je':
      return jobView(id, d);
    case 'te':
      return telemetryView(id, d);
    case 'ac':
      return activityView(id, d);
    case 'au':
      return auditView(id, d);
    default:
      return deadView(s, id, d);
  }
}

/** A session hash as the page may see it (no blob). */
export function sessionView(h: Record<string, string>): Record<string, unknown> | null {
  if (!h.session_id) return null;
  return {
    session: h.session_id,
    host: text(h.host, 200),
    pid: h.pid ? Number(h.pid) : null,
    role: text(h.role, 200),
    task: text(h.task, 300),
    phase: text(h.phase, 100),
    registered_at: text(h.registered_at, 40),
    last_heartbeat: text(h.last_heartbeat, 40),
    last_heartbeat_ms: h.last_heartbeat_ms ? Number(h.last_heartbeat_ms) : null,
  };
}
