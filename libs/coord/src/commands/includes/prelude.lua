--[[
The shared head of every coord state-change script. Each one writes the state AND its typed coord
event (an XADD of `type coord-event v 1 data <json>`, EnvelopeCodec's entry fields for
`Schemas.coordEvent`) in one atomic step, so no crash can leave one without the other.

KEYS (every including script's first two):
  KEYS[1] the coord events stream
  KEYS[2] the tx_id sequence key (the last tx_id handed out)
ARGV (every including script's first five; its own follow from ARGV[6]):
  ARGV[1] the coord key prefix (`<ns>:coord:{coord}:`), for keys only known inside the script
          (a session's locks); every coord key shares the `{coord}` hash tag, so all of them live
          in one cluster slot with the events stream
  ARGV[2] event `source`
  ARGV[3] 16 random Crockford base32 chars (the ULID's random part)
  ARGV[4] approximate MAXLEN safety cap of the events stream
  ARGV[5] "now" in ms since the epoch, or '' for Redis TIME (the one clock every writer shares)
Returns: nothing (an include).

tx_id: `coord` runs as many short-lived processes on many hosts, and ULIDs made by different
processes are not mutually monotonic. So the ULID is made HERE, inside the script: time from the
shared clock, randomness from the caller, and if that is not above the last id handed out (same
millisecond, clock step), the last id + 1. Redis runs scripts one at a time, so tx_ids of the
events stream increase strictly across every writer, and (source, tx_id) is unique.
]]
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

--- @include "iso"

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
-- Held glob reservations (`src/**`), so a plain lock only scans these for covering globs.
local GLOB_LOCKS = PREFIX .. 'glob-locks'
local CONFIG = PREFIX .. 'config'

-- The deployment's session TTL, read here from the coord config hash (`coordbus config set
-- session-ttl`, seeded by the services from COORD_SESSION_TTL) so that no caller's own setting
-- can decide who is live: steal, the heartbeat event rule and the cull all use this one value.
-- Unset: COORD_SESSION_TTL's default, 300 s (a unit test holds the two equal).
local DEFAULT_SESSION_TTL_MS = 300000
local function session_ttl_ms()
  return tonumber(redis.call('HGET', CONFIG, 'session_ttl_ms') or '') or DEFAULT_SESSION_TTL_MS
end

-- Releases a lock (state + lock.release event); returns the event's tx_id.
local function release_lock(res, owner, reason, ms)
  redis.call('DEL', lock_key(res))
  redis.call('ZREM', LOCKS, res)
  redis.call('SREM', slocks_key(owner), res)
  redis.call('SREM', GLOB_LOCKS, res)
  return emit('lock.release', ms, owner, res,
    obj('resource', js(res), 'owner_session', js(owner), 'reason', js(reason)))
end
