/**
 * Coord records as users and file-based tools see them. Field names are exactly those of the
 * COORD_ROOT file layout (`sessions/<id>.json`, `locks/<resource>/record.json`, ...).
 */

/** A registered session (`sessions/<id>.json`). Timestamps are RFC 3339 UTC from the Redis clock. */
export interface SessionRecord {
  session_id: string;
  pid: number;
  host: string;
  role: string;
  task: string;
  /** Free-form JSON the session registered with (`--blob`); null when none. */
  blob: unknown;
  /** Last phase given to `heartbeat --phase`; null when none. */
  phase: string | null;
  registered_at: string;
  last_heartbeat: string;
}

/** A session with its liveness judged against the session TTL at listing time. */
export interface PeerRecord extends SessionRecord {
  live: boolean;
  /** Milliseconds since the last heartbeat, on the Redis clock. */
  age_ms: number;
  /** Orders assigned to it and not yet done or rejected (`pending` or `ack`). */
  open_orders: number;
}

/** A held lock (`locks/<resource>/record.json`, plus the resource name itself). */
export interface LockRecord {
  resource: string;
  owner_session_id: string;
  owner_pid: number;
  acquired_at: string;
  /** When the lock lapses on its own (`lock --ttl`); null when it never does. */
  expires_at: string | null;
  reason: string;
}

/** An inbox message (`messages/inbox-<to>/<msg_id>.json`). */
export interface InboxMessage {
  msg_id: string;
  from_session: string;
  to_session: string;
  kind: string;
  subject: string;
  body: string;
  ts: string;
}

export type OrderState = 'pending' | 'ack' | 'done' | 'reject';
export type OrderAction = 'ack' | 'done' | 'reject';
export const ORDER_ACTIONS: readonly OrderAction[] = ['ack', 'done', 'reject'];

/** A work order (`dispatch-orders/<order_id>.json`). */
export interface DispatchOrder {
  order_id: string;
  assignee: string;
  ticket: string;
  issued_by: string;
  issued_at: string;
  /** pending -> ack -> done, or reject (`coord order ack|done|reject`). */
  state: OrderState;
  /** When the order entered its state. */
  state_at: string;
  /** The assignee's note on its last step; null when none. */
  note: string | null;
}

export interface RegisterInput {
  sessionId: string;
  host: string;
  pid: number;
  role?: string;
  task?: string;
  /** Any JSON value; stored and echoed verbatim. */
  blob?: unknown;
}

export interface RegisterResult {
  /** `registered` the first time for (host, pid, session_id) — with a `session.register` event —, else `refreshed`. */
  status: 'registered' | 'refreshed';
  session: SessionRecord;
  /** tx_id of the event written, when one was. */
  txId?: string;
}

export interface HeartbeatResult {
  session: SessionRecord;
  /** Whether a `session.heartbeat` event was written (only when something changed). */
  emitted: boolean;
  txId?: string;
}

export interface RemoveResult {
  session: SessionRecord;
  /** Locks released with the session, each with a `lock.release` event. */
  releasedLocks: string[];
  /** tx_ids written: the `session.dereg` first, then one per released lock. */
  txIds: string[];
}

/** What {@link CoordStore.evictIfExpired} did. */
export type EvictResult =
  | ({ evicted: true } & RemoveResult)
  | { evicted: false; reason: 'missing' }
  | { evicted: false; reason: 'live'; lastHeartbeatMs: number };

export interface LockResult {
  /** `acquired` (event written) or `held` (the caller already held it; expiry refreshed, no event). */
  status: 'acquired' | 'held';
  lock: LockRecord;
  /** The session(s) the lock was stolen from (`steal`; comma-separated when a glob took several), when it was. */
  stolenFrom?: string;
  /** The caller had no session record and was registered by this lock (`session.register`). */
  autoRegistered?: boolean;
  txId?: string;
}

export interface SessionStatus {
  session_id: string;
  session: PeerRecord | null;
  locks: LockRecord[];
  inbox_depth: number;
  peers: { total: number; live: number };
  /** Its orders not yet done or rejected, oldest first. */
  orders: DispatchOrder[];
  /** The deployment's session TTL (stored in Redis): the one that decides steal and cull. */
  session_ttl_s: number;
  /** The caller's own COORD_SESSION_TTL, when it differs: `live` above is judged with it, for display only. */
  display_ttl_s?: number;
}
