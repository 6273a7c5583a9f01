import { CoordEvent, EnvelopeCodec, Schemas, TxKind } from '@coordbus/envelope';
import type { CoordSnapshot, SessionFileState } from '@coordbus/coord';
import { deterministicUlid } from './deterministic-ulid';

/** What {@link diffCoordSnapshots} needs besides the two snapshots. */
export interface DiffOptions {
  /** `source` of the events (half of the dedup key). */
  source: string;
  /** "Now" in ms: the time of releases and deregs, and what staleness is judged against. */
  now: number;
  /** A removed session whose heartbeat is older than this is reported as `ttl-expired`. */
  sessionTtlMs: number;
  codec?: EnvelopeCodec;
  /** Called for an event that fails its schema (it is left out). */
  onInvalid?: (what: string, reason: string) => void;
}

const defaultCodec = new EnvelopeCodec();

/** Event order inside one tick: state appears, changes, then goes (a tick flattens time). */
const KIND_ORDER: Record<TxKind, number> = {
  'session.register': 0,
  'session.heartbeat': 1,
  'lock.release': 2,
  'lock.acquire': 3,
  'inbox.deliver': 4,
  'dispatch.issue': 5,
  // Never read from files (an order file carries no history); listed for the type.
  'dispatch.ack': 5,
  'dispatch.done': 5,
  'dispatch.reject': 5,
  'session.dereg': 6,
};

/**
 * The coord events that take the coord root from `prev` to `next` (a pure function: same input,
 * same events, same tx_ids).
 *
 * - `sessions/<id>.json` appears / disappears -> `session.register` / `session.dereg`;
 *   `last_heartbeat` or `phase` changes -> `session.heartbeat`.
 * - `locks/<resource>/record.json` appears -> `lock.acquire`; disappears -> `lock.release`;
 *   owner changes -> `lock.release` (`stolen`, or `expired`) then `lock.acquire`.
 * - a new file in `messages/inbox-<id>/` -> `inbox.deliver` (envelope fields only, never the body).
 * - a new `dispatch-orders/<order_id>.json` -> `dispatch.issue`.
 *
 * `tx_id`s are derived from the change itself (see `deterministicUlid`), so re-emitting after a
 * restart, or several replicas watching one root, yields the same `(source, tx_id)` keys.
 * Release and dereg reasons are inferred from the files (the files do not record them).
 */
export function diffCoordSnapshots(
  prev: CoordSnapshot,
  next: CoordSnapshot,
  options: DiffOptions,
): CoordEvent[] {
  const now = options.now;
  const ttlMs = options.sessionTtlMs;
  const codec = options.codec ?? defaultCodec;
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
      source: options.source,
      session_id: sessionId,
      resource,
      payload,
    };
    try {
      out.push(codec.validate(Schemas.coordEvent, event));
    } catch (err) {
      options.onInvalid?.(`${kind}:${sessionId ?? resource ?? ''}`, (err as Error).message);
    }
  };

  const removedSessions = new Set<string>();
  for (const [id, s] of Object.entries(next.sessions)) {
    const before = prev.sessions[id];
    if (!before || before.registered_at !== s.registered_at) {
      if (before) emitDereg(emit, before, 'replaced', nowIso);
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
    const stale = now - Date.parse(s.last_heartbeat) > ttlMs;
    emitDereg(emit, s, stale ? 'ttl-expired' : 'explicit', nowIso);
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
        reason = owner && now - Date.parse(owner.last_heartbeat) > ttlMs ? 'owner-evicted' : 'owner-dereg';
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

function emitDereg(
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
