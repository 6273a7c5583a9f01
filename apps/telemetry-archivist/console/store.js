// The page's model of the fleet: a snapshot, then every live feed item applied in order.
// Every list is bounded (the page never holds an unbounded list).
const MAX = { activity: 300, conflicts: 100, messages: 200, telemetry: 500, audit: 200, dead: 500 };
// Maps the feed adds to: a page left open for days drops what finished first (ended sessions,
// finished orders and jobs), so it holds at most the snapshot's bounds plus a margin.
const MAX_MAP = { sessions: 5200, orders: 1000, jobs: 1000, dead: 500 };

const listeners = new Set();
let scheduled = false;

export const state = {
  loaded: false,
  connection: 'connecting',
  access: { level: null, actions_enabled: false, reads_need_token: false },
  ttlMs: 300000,
  clockSkewMs: 0,
  sessions: new Map(),
  locks: new Map(),
  conflicts: [],
  orders: new Map(),
  messages: [],
  jobs: new Map(),
  telemetry: [],
  activity: [],
  audit: [],
  dead: new Map(),
  version: 0,
};

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Batches re-renders to one per animation frame, however many items arrive. */
export function changed() {
  state.version++;
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    for (const fn of listeners) fn(state.version);
  });
}

export const serverNow = () => Date.now() + state.clockSkewMs;

const push = (list, item, max) => {
  list.push(item);
  if (list.length > max) list.splice(0, list.length - max);
};

function session(id) {
  let s = state.sessions.get(id);
  if (!s) {
    // Known only from activity so far (not registered, or registered before the archive kept it).
    s = { session: id, state: 'unknown', inbox: 0, activity: null, last_hb_ms: null };
    state.sessions.set(id, s);
  }
  return s;
}

/** live / stale for registered sessions (judged on the heartbeat age), culled / deregistered once ended. */
export function sessionState(s) {
  if (s.state === 'culled' || s.state === 'deregistered' || s.state === 'unknown') return s.state;
  if (s.last_hb_ms === null) return 'live';
  return serverNow() - s.last_hb_ms > state.ttlMs ? 'stale' : 'live';
}

export function loadSnapshot(snap) {
  state.ttlMs = snap.session_ttl_ms;
  state.clockSkewMs = snap.now - Date.now();
  state.sessions = new Map();
  for (const e of snap.ended)
    state.sessions.set(e.session, { ...e, inbox: 0, activity: null, last_hb_ms: null });
  for (const s of snap.sessions) {
    state.sessions.set(s.session, { ...s, state: 'live', last_hb_ms: s.last_heartbeat_ms });
  }
  state.locks = new Map(snap.locks.map((l) => [l.resource, l]));
  state.orders = new Map(snap.orders.map((o) => [o.order_id, o]));
  state.jobs = new Map(snap.jobs.map((j) => [j.job, j]));
  state.activity = snap.activity.slice(-MAX.activity);
  state.audit = snap.audit.slice(0, MAX.audit);
  state.dead = new Map(snap.dead.map((d) => [`${d.s}/${d.id}`, d]));
  state.conflicts = (snap.conflicts ?? []).map(conflictOf);
  state.loaded = true;
  changed();
}

/** A failed op: a lock conflict (exit 3) names the caller and the holder of the resource. */
function conflictOf(it) {
  return {
    ts: it.ts,
    kind: it.exit_code === 3 ? 'conflict' : `${it.op} exit ${it.exit_code}`,
    session: it.session,
    resource: it.resource,
    owner: it.peer || it.holder || null,
    msg: `${it.op} by ${it.session}${it.exit_code === 3 && (it.peer || it.holder) ? ` refused: held by ${it.peer || it.holder}` : ''}`,
    op: it.op,
  };
}

const TERMINAL = new Set(['succeeded', 'failed', 'signaled', 'cancelled', 'timed-out', 'skipped', 'crashed']);

export function applyItem(it) {
  switch (it.k) {
    case 'hb':
      for (const [id, ms, depth] of it.sessions) {
        const s = session(id);
        s.last_hb_ms = ms;
        s.inbox = depth;
        if (s.state !== 'live') s.state = 'live';
      }
      break;
    case 'session.register': {
      const s = session(it.session);
      Object.assign(s, it.session_view ?? {}, { role: it.role, task: it.task, state: 'live' });
      s.last_hb_ms = Date.parse(it.ts);
      s.ended_at = null;
      s.end_reason = null;
      break;
    }
    case 'session.heartbeat': {
      const s = session(it.session);
      s.last_hb_ms = Date.parse(it.last_heartbeat ?? it.ts);
      s.phase = it.phase ?? s.phase;
      break;
    }
    case 'session.dereg': {
      const s = session(it.session);
      s.state = it.reason === 'ttl-expired' ? 'culled' : 'deregistered';
      s.end_reason = it.reason;
      s.ended_at = it.ts;
      break;
    }
    case 'lock.acquire':
      if (it.stolen_from)
        push(
          state.conflicts,
          {
            ts: it.ts,
            kind: 'steal',
            session: it.owner_session,
            resource: it.resource,
            owner: it.stolen_from,
          },
          MAX.conflicts,
        );
      state.locks.set(it.resource, {
        resource: it.resource,
        owner: it.owner_session,
        acquired_at: it.ts,
        expires_at: it.expires_at ?? null,
        reason: it.reason ?? '',
      });
      break;
    case 'lock.release': {
      const l = state.locks.get(it.resource);
      if (l && l.owner === it.owner_session) state.locks.delete(it.resource);
      if (it.reason === 'forced' || it.reason === 'stolen')
        push(
          state.conflicts,
          { ts: it.ts, kind: it.reason, session: null, resource: it.resource, owner: it.owner_session },
          MAX.conflicts,
        );
      break;
    }
    case 'inbox.deliver':
      push(state.messages, it, MAX.messages);
      session(it.to_session).inbox++;
      break;
    case 'dispatch.issue':
      state.orders.set(it.order_id, {
        order_id: it.order_id,
        assignee: it.assignee,
        ticket: it.ticket,
        // The dispatch.issue event names the assignee, not the issuer (the order hash has it).
        issued_by: null,
        issued_at: it.ts,
        state: 'pending',
      });
      break;
    case 'op.failed':
      push(state.conflicts, conflictOf(it), MAX.conflicts);
      break;
    case 'job': {
      const j = state.jobs.get(it.job) ?? { job: it.job, created_at: it.ts };
      Object.assign(j, {
        name: it.name,
        hook: it.hook,
        worktree: it.worktree,
        status: it.status,
        exit_code: it.exit_code,
        signal: it.signal,
        reason: it.reason,
        host: it.host,
      });
      if (it.status === 'running' && !j.started_at) j.started_at = it.ts;
      if (TERMINAL.has(it.status)) j.finished_at = it.ts;
      state.jobs.set(it.job, j);
      break;
    }
    case 'telemetry':
      push(state.telemetry, it, MAX.telemetry);
      break;
    case 'activity':
      push(state.activity, it, MAX.activity);
      session(it.session).activity = it;
      break;
    case 'audit':
      state.audit.unshift(it);
      state.audit.length = Math.min(state.audit.length, MAX.audit);
      break;
    case 'dead':
      state.dead.set(`${it.s}/${it.id}`, it);
      break;
    default:
      if (it.k.startsWith('dispatch.')) {
        const o = state.orders.get(it.order_id);
        if (o) o.state = it.k.slice('dispatch.'.length);
      }
  }
}

/** Deletes the oldest entries of `map` past `max`, those `done` says are finished first. */
function cap(map, max, done) {
  if (map.size <= max) return;
  for (const [k, v] of map) {
    if (map.size <= max) return;
    if (done(v)) map.delete(k);
  }
  for (const k of map.keys()) {
    if (map.size <= max) return;
    map.delete(k);
  }
}

export function applyBatch(items) {
  for (const it of items) applyItem(it);
  cap(state.sessions, MAX_MAP.sessions, (s) => s.state === 'culled' || s.state === 'deregistered');
  cap(state.orders, MAX_MAP.orders, (o) => o.state !== 'pending' && o.state !== 'issue');
  cap(state.jobs, MAX_MAP.jobs, (j) => TERMINAL.has(j.status));
  cap(state.dead, MAX_MAP.dead, () => true);
  changed();
}

/** Sessions waiting on a person: a Notification hook event last, or stopped with pending orders. */
export function needsYou() {
  const pendingBy = new Map();
  for (const o of state.orders.values())
    if (o.state === 'pending' || o.state === 'issue')
      pendingBy.set(o.assignee, (pendingBy.get(o.assignee) ?? 0) + 1);
  const out = [];
  for (const s of state.sessions.values()) {
    const a = s.activity;
    if (sessionState(s) === 'culled' || sessionState(s) === 'deregistered') continue;
    if (a?.event === 'Notification')
      out.push({ s, why: a.message || 'waiting for input (Notification)', since: a.ts });
    else if (a?.event === 'Stop' && pendingBy.get(s.session))
      out.push({ s, why: `stopped with ${pendingBy.get(s.session)} pending order(s)`, since: a.ts });
  }
  return out.sort((x, y) => (x.since < y.since ? -1 : 1));
}

export function pendingOrders(sessionId) {
  let n = 0;
  for (const o of state.orders.values())
    if (o.assignee === sessionId && (o.state === 'pending' || o.state === 'issue')) n++;
  return n;
}
