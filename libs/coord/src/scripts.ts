/**
 * The Lua scripts behind every coord state change. Each one writes the state AND its typed coord
 * event (an `XADD` of `type coord-event v 1 data <json>` — EnvelopeCodec's entry fields for
 * `Schemas.coordEvent`) in one atomic step, so no crash can leave one without the other.
 *
 * Every script takes the same leading arguments (its own follow from ARGV[6]):
 *   KEYS[1] the coord events stream, KEYS[2] the tx_id sequence key, KEYS[3..] the script's keys
 *   ARGV[1] the coord key prefix (`<ns>:coord:{coord}:`), for keys only known inside the script
 *           (a session's locks); every coord key shares the `{coord}` hash tag, so all of them
 *           live in one cluster slot with the events stream.
 *   ARGV[2] event `source`; ARGV[3] 16 random Crockford base32 chars (the ULID's random part);
 *   ARGV[4] approximate MAXLEN safety cap of the events stream; ARGV[5] "now" in ms since the
 *           epoch, or '' for Redis `TIME` (the one clock every writer shares).
 *
 * tx_id: `coord` runs as many short-lived processes on many hosts, and ULIDs made by different
 * processes are not mutually monotonic. So the ULID is made HERE, inside the script: time from
 * the shared clock, randomness from the caller, and if that is not above the last id handed out
 * (same millisecond, clock step), the last id + 1. Redis runs scripts one at a time, so tx_ids of
 * the events stream increase strictly across every writer, and (source, tx_id) is unique.
 */

const PRELUDE = `
local EVENTS = KEYS[1]
local SEQ = KEYS[2]
local PREFIX = ARGV[1]
local SOURCE = ARGV[2]
local RAND = ARGV[3]
local CAP = ARGV[4]
local B32 = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

local function now_ms()
  if ARGV[5] ~= '' then return tonumber(ARGV[5]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function iso(ms)
  local s = math.floor(ms / 1000)
  local msr = ms - s * 1000
  local days = math.floor(s / 86400)
  local rem = s - days * 86400
  local h = math.floor(rem / 3600)
  rem = rem - h * 3600
  local mi = math.floor(rem / 60)
  local se = rem - mi * 60
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d, h, mi, se, msr)
end

local function enc_time(ms)
  local out = {}
  for i = 10, 1, -1 do
    local r = ms % 32
    out[i] = string.sub(B32, r + 1, r + 1)
    ms = (ms - r) / 32
  end
  return table.concat(out)
end

local function incr(s)
  local c = {}
  for i = 1, #s do c[i] = string.sub(s, i, i) end
  for i = #s, 11, -1 do
    local idx = string.find(B32, c[i], 1, true)
    if idx < 32 then
      c[i] = string.sub(B32, idx + 1, idx + 1)
      return table.concat(c)
    end
    c[i] = '0'
  end
  return table.concat(c)
end

local function next_ulid(ms)
  local cand = enc_time(ms) .. RAND
  local last = redis.call('GET', SEQ)
  if last and cand <= last then cand = incr(last) end
  redis.call('SET', SEQ, cand)
  return cand
end

local function js(v)
  if v == nil or v == false then return 'null' end
  return cjson.encode(v)
end

-- obj('k1', json1, 'k2', json2, ...): values are JSON text already, so the key order is fixed
-- and raw JSON (a blob) is spliced in untouched.
local function obj(...)
  local a = {...}
  local parts = {}
  for i = 1, select('#', ...), 2 do
    if a[i + 1] ~= nil then parts[#parts + 1] = cjson.encode(a[i]) .. ':' .. a[i + 1] end
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

local function emit(kind, ms, sid, resource, payload)
  local id = next_ulid(ms)
  local ts = iso(ms)
  local data = obj('tx_id', js(id), 'tx_kind', js(kind), 'ts', js(ts), 'ingress_ts', js(ts),
    'source', js(SOURCE), 'session_id', js(sid), 'resource', js(resource), 'payload', payload)
  redis.call('XADD', EVENTS, 'MAXLEN', '~', CAP, '*', 'type', 'coord-event', 'v', '1', 'data', data)
  return id
end

local function session_key(sid) return PREFIX .. 'session:' .. sid end
local function slocks_key(sid) return PREFIX .. 'session-locks:' .. sid end
local function lock_key(res) return PREFIX .. 'lock:' .. res end
local LOCKS = PREFIX .. 'locks'
local SESSIONS = PREFIX .. 'sessions'

-- Releases a lock (state + lock.release event); returns the event's tx_id.
local function release_lock(res, owner, reason, ms)
  redis.call('DEL', lock_key(res))
  redis.call('ZREM', LOCKS, res)
  redis.call('SREM', slocks_key(owner), res)
  return emit('lock.release', ms, owner, res,
    obj('resource', js(res), 'owner_session', js(owner), 'reason', js(reason)))
end
`;

/**
 * register: KEYS[3] session hash, KEYS[4] sessions zset (score = last heartbeat ms).
 * ARGV[6] session_id, [7] host, [8] pid, [9] role, [10] task, [11] blob (JSON text).
 * Idempotent on (host, pid, session_id): the same triple only refreshes the record and
 * last_heartbeat; a new triple writes `session.register`.
 * Returns {'registered'|'refreshed', tx_id or '', HGETALL session}.
 */
export const REGISTER = `${PRELUDE}
local sid, host, pid, role, task, blob = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local ms = now_ms()
local now = iso(ms)
local cur = redis.call('HMGET', KEYS[3], 'host', 'pid', 'registered_at', 'phase')
local first = (not cur[1]) or cur[1] ~= host or cur[2] ~= pid
local registered_at = now
local phase = ''
if not first then
  registered_at = cur[3]
  phase = cur[4] or ''
end
redis.call('HSET', KEYS[3], 'session_id', sid, 'pid', pid, 'host', host, 'role', role, 'task', task,
  'blob', blob, 'phase', phase, 'registered_at', registered_at, 'last_heartbeat', now, 'last_heartbeat_ms', ms)
redis.call('ZADD', KEYS[4], ms, sid)
local tx = ''
if first then
  tx = emit('session.register', ms, sid, nil, obj('role', js(role), 'task', js(task), 'blob', blob))
end
return {first and 'registered' or 'refreshed', tx, redis.call('HGETALL', KEYS[3])}
`;

/**
 * heartbeat: KEYS[3] session hash, KEYS[4] sessions zset.
 * ARGV[6] session_id, [7] phase, [8] '1' when a phase was given (else the phase is kept),
 * [9] session TTL in ms.
 * Writes `session.heartbeat` only when something changed: the phase, or the previous heartbeat
 * is at least TTL/3 old (so a session that keeps heartbeating shows up on the event stream at
 * least about every TTL/3, enough for an event-only reader to judge liveness, while a busy
 * session's every-few-seconds heartbeats stay off the stream).
 * Returns {'missing'} or {'ok', tx_id or '', HGETALL session}.
 */
export const HEARTBEAT = `${PRELUDE}
local sid, given, has_phase, ttl = ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])
if redis.call('EXISTS', KEYS[3]) == 0 then return {'missing'} end
local ms = now_ms()
local now = iso(ms)
local cur = redis.call('HMGET', KEYS[3], 'last_heartbeat_ms', 'phase')
local prev_ms = tonumber(cur[1]) or 0
local prev_phase = cur[2] or ''
local phase = prev_phase
if has_phase == '1' then phase = given end
redis.call('HSET', KEYS[3], 'last_heartbeat', now, 'last_heartbeat_ms', ms, 'phase', phase)
redis.call('ZADD', KEYS[4], ms, sid)
local tx = ''
if phase ~= prev_phase or (ms - prev_ms) * 3 >= ttl then
  local p = 'null'
  if phase ~= '' then p = js(phase) end
  tx = emit('session.heartbeat', ms, sid, nil, obj('last_heartbeat', js(now), 'phase', p))
end
return {'ok', tx, redis.call('HGETALL', KEYS[3])}
`;

/**
 * dereg / evict: KEYS[3] session hash, KEYS[4] sessions zset, KEYS[5] the session's lock set.
 * ARGV[6] session_id, [7] dereg reason, [8] lock release reason, [9] TTL in ms or '' (when set,
 * only a session whose last heartbeat is older than the TTL is removed: the sentinel's cull, where
 * this script is the arbiter between replicas — exactly one of them sees 'removed').
 * Writes `session.dereg`, then `lock.release` for every lock the session held.
 * Returns {'missing'} | {'live', last_heartbeat_ms} | {'removed', dereg tx_id, {res...}, {tx...}, HGETALL}.
 */
export const DEREG = `${PRELUDE}
local sid, reason, lock_reason, ttl = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
if redis.call('EXISTS', KEYS[3]) == 0 then return {'missing'} end
local ms = now_ms()
local last = tonumber(redis.call('HGET', KEYS[3], 'last_heartbeat_ms')) or 0
if ttl ~= '' and ms - last <= tonumber(ttl) then return {'live', tostring(last)} end
local record = redis.call('HGETALL', KEYS[3])
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[4], sid)
local tx = emit('session.dereg', ms, sid, nil, obj('reason', js(reason)))
local released, txs = {}, {}
local held = redis.call('SMEMBERS', KEYS[5])
table.sort(held)
for _, res in ipairs(held) do
  if redis.call('HGET', lock_key(res), 'owner_session_id') == sid then
    released[#released + 1] = res
    txs[#txs + 1] = release_lock(res, sid, lock_reason, ms)
  end
end
redis.call('DEL', KEYS[5])
return {'removed', tx, released, txs, record}
`;

/**
 * lock / steal: KEYS[3] lock hash, KEYS[4] locks zset, KEYS[5] the caller's lock set.
 * ARGV[6] session_id, [7] pid, [8] resource, [9] lock TTL in ms or '', [10] reason,
 * [11] mode 'lock' | 'steal' | 'force', [12] session TTL in ms (liveness of the owner).
 * A lock past its expires_at is released first (`lock.release` reason `expired`). Held by the
 * caller: refreshed, no event. Held by another: 'lock' -> conflict; 'steal' -> conflict while the
 * owner is live (session present and heartbeat within the session TTL); otherwise (or 'force')
 * the owner gets `lock.release` reason `stolen`, then the caller's `lock.acquire`.
 * Returns {'conflict', owner, HGETALL, owner_live '1'|'0'} | {'held', '', HGETALL} |
 *         {'acquired', tx_id, HGETALL, stolen_from or ''}.
 */
export const LOCK = `${PRELUDE}
local sid, pid, res, ttl, reason, mode, sttl = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], tonumber(ARGV[12])
local ms = now_ms()
local owner = redis.call('HGET', KEYS[3], 'owner_session_id')
local stolen = ''
local expires_ms = ''
local expires_at = ''
if ttl ~= '' then
  expires_ms = tostring(ms + tonumber(ttl))
  expires_at = iso(ms + tonumber(ttl))
end
if owner then
  local exp = tonumber(redis.call('HGET', KEYS[3], 'expires_ms') or '')
  if exp and exp <= ms then
    release_lock(res, owner, 'expired', ms)
    owner = nil
  end
end
if owner then
  if owner == sid then
    redis.call('HSET', KEYS[3], 'owner_pid', pid, 'expires_at', expires_at, 'expires_ms', expires_ms, 'reason', reason)
    return {'held', '', redis.call('HGETALL', KEYS[3])}
  end
  local olast = tonumber(redis.call('HGET', session_key(owner), 'last_heartbeat_ms') or '')
  local live = olast ~= nil and (ms - olast) <= sttl
  if mode == 'lock' or (mode == 'steal' and live) then
    return {'conflict', owner, redis.call('HGETALL', KEYS[3]), live and '1' or '0'}
  end
  release_lock(res, owner, 'stolen', ms)
  stolen = owner
end
redis.call('HSET', KEYS[3], 'resource', res, 'owner_session_id', sid, 'owner_pid', pid, 'acquired_at', iso(ms),
  'expires_at', expires_at, 'expires_ms', expires_ms, 'reason', reason)
redis.call('ZADD', KEYS[4], ms, res)
redis.call('SADD', KEYS[5], res)
local p = obj('resource', js(res), 'owner_session', js(sid),
  'expires_at', expires_at ~= '' and js(expires_at) or nil, 'reason', reason ~= '' and js(reason) or nil)
local tx = emit('lock.acquire', ms, sid, res, p)
return {'acquired', tx, redis.call('HGETALL', KEYS[3]), stolen}
`;

/**
 * unlock: KEYS[3] lock hash. ARGV[6] session_id, [7] resource.
 * Only the owner may unlock (`lock.release` reason `unlock`). A lock past its expiry is released
 * as `expired` and reported missing.
 * Returns {'missing'} | {'not-owner', owner} | {'released', tx_id}.
 */
export const UNLOCK = `${PRELUDE}
local sid, res = ARGV[6], ARGV[7]
local ms = now_ms()
local owner = redis.call('HGET', KEYS[3], 'owner_session_id')
if not owner then return {'missing'} end
if owner == sid then return {'released', release_lock(res, sid, 'unlock', ms)} end
local exp = tonumber(redis.call('HGET', KEYS[3], 'expires_ms') or '')
if exp and exp <= ms then
  release_lock(res, owner, 'expired', ms)
  return {'missing'}
end
return {'not-owner', owner}
`;

/**
 * send: KEYS[3] the peer's inbox list, KEYS[4] the peer's session hash.
 * ARGV[6] from, [7] to, [8] kind, [9] subject, [10] body, [11] '1' to require a registered peer.
 * Appends the message and writes `inbox.deliver` (the envelope only, never the body).
 * Returns {'missing'} | {'sent', msg_id, tx_id, message JSON}.
 */
export const SEND = `${PRELUDE}
local from, to, kind, subject, body, need = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11]
if need == '1' and redis.call('EXISTS', KEYS[4]) == 0 then return {'missing'} end
local ms = now_ms()
local id = next_ulid(ms)
local msg = obj('msg_id', js(id), 'from_session', js(from), 'to_session', js(to), 'kind', js(kind),
  'subject', js(subject), 'body', js(body), 'ts', js(iso(ms)))
redis.call('RPUSH', KEYS[3], msg)
local tx = emit('inbox.deliver', ms, to, nil, obj('to_session', js(to), 'msg_id', js(id), 'kind', js(kind),
  'from_session', js(from), 'subject', js(subject)))
return {'sent', id, tx, msg}
`;

/**
 * dispatch: KEYS[3] the order hash (prefix + 'dispatch:' + id; ignored when the id is generated),
 * KEYS[4] the orders zset. ARGV[6] order_id or '' (a ULID is made), [7] assignee, [8] ticket,
 * [9] issuer session.
 * Re-issuing an identical order is a no-op; a different order under the same id is a conflict.
 * Returns {'issued', tx_id, HGETALL} | {'exists', '', HGETALL} | {'conflict', '', HGETALL}.
 */
export const DISPATCH = `${PRELUDE}
local oid, assignee, ticket, issuer = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local ms = now_ms()
local key = KEYS[3]
if oid == '' then
  oid = next_ulid(ms)
  key = PREFIX .. 'dispatch:' .. oid
end
if redis.call('EXISTS', key) == 1 then
  local cur = redis.call('HMGET', key, 'assignee', 'ticket')
  local same = cur[1] == assignee and cur[2] == ticket
  return {same and 'exists' or 'conflict', '', redis.call('HGETALL', key)}
end
redis.call('HSET', key, 'order_id', oid, 'assignee', assignee, 'ticket', ticket, 'issued_by', issuer, 'issued_at', iso(ms))
redis.call('ZADD', KEYS[4], ms, oid)
local tx = emit('dispatch.issue', ms, assignee, nil, obj('order_id', js(oid), 'assignee', js(assignee), 'ticket', js(ticket)))
return {'issued', tx, redis.call('HGETALL', key)}
`;

/**
 * drain: KEYS[1] an inbox list. Takes every message at once (destructive, atomic).
 * Returns the messages' JSON texts, oldest first.
 */
export const DRAIN = `
local all = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return all
`;

/**
 * list: KEYS[1] a zset of ids (sessions or locks or orders), ARGV[1] the prefix of each member's
 * hash. Returns {now_ms, {HGETALL...}} in zset order, in one round trip.
 */
export const LIST = `
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local h = redis.call('HGETALL', ARGV[1] .. id)
  if #h > 0 then out[#out + 1] = h end
end
return {tostring(ms), out}
`;
