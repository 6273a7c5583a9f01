#!lua
--[[
Takes a lock (lock / steal / force) on a resource name or a glob reservation (`src/**`).

Conflicts: the same name, or a glob held by another session that covers the name, or a name held
by another session that the requested glob covers (`src/**` vs `src/auth.ts`, both ways); two
globs conflict when one's literal head (up to the first wildcard) starts the other's — a
conservative overlap test. `*` and `?` stay within one path segment, `**` crosses segments.
A conflicting lock past its expires_at is released first (`lock.release` reason `expired`).
Held by the caller: refreshed, no event. Held by another: 'lock' -> conflict; 'steal' ->
conflict while an owner is live (heartbeat within the deployment's session TTL, read here —
never the caller's); otherwise (or 'force') each conflicting owner gets `lock.release` reason
`stolen`, then the caller's `lock.acquire`.

A caller with no session record is registered here first (`session.register`, blob
{"auto_registered":true}), so that every lock belongs to a session the cull can see.

KEYS: the prelude's two (events stream, tx_id sequence; see includes/prelude.lua), then
  KEYS[3] the lock hash   KEYS[4] the locks zset   KEYS[5] the caller's lock set
ARGV: the prelude's first five (see includes/prelude.lua), then
  ARGV[6] session_id   ARGV[7] pid   ARGV[8] resource   ARGV[9] lock TTL in ms or ''
  ARGV[10] reason   ARGV[11] mode 'lock' | 'steal' | 'force'   ARGV[12] host (auto-register)
Returns:
  {'conflict', owner, HGETALL conflicting lock, owner live '1'|'0', conflicting resource} |
  {'held', '', HGETALL lock} |
  {'acquired', tx_id, HGETALL lock, stolen_from (distinct owners, comma-separated) or '', '1' if auto-registered}
]]
--- @include "includes/prelude"
local sid, pid, res, ttl, reason, mode, host = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12]
local ms = now_ms()
local expires_ms = ''
local expires_at = ''
if ttl ~= '' then
  expires_ms = tostring(ms + tonumber(ttl))
  expires_at = iso(ms + tonumber(ttl))
end

local function is_glob(s) return string.find(s, '[%*%?]') ~= nil end

local function glob_pattern(g)
  local out, i = {'^'}, 1
  while i <= #g do
    local c = string.sub(g, i, i)
    if c == '*' and string.sub(g, i + 1, i + 1) == '*' then
      out[#out + 1] = '.*'
      i = i + 2
    else
      if c == '*' then
        out[#out + 1] = '[^/]*'
      elseif c == '?' then
        out[#out + 1] = '[^/]'
      elseif string.find(c, '[%^%$%(%)%%%.%[%]%+%-]') then
        out[#out + 1] = '%' .. c
      else
        out[#out + 1] = c
      end
      i = i + 1
    end
  end
  out[#out + 1] = '$'
  return table.concat(out)
end

local function head(g)
  local p = string.find(g, '[%*%?]')
  if p then return string.sub(g, 1, p - 1) end
  return g
end

local function overlaps(a, b)
  if a == b then return true end
  local ga, gb = is_glob(a), is_glob(b)
  if ga and gb then
    local ha, hb = head(a), head(b)
    return string.sub(ha, 1, #hb) == hb or string.sub(hb, 1, #ha) == ha
  end
  if ga then return string.find(b, glob_pattern(a)) ~= nil end
  if gb then return string.find(a, glob_pattern(b)) ~= nil end
  return false
end

-- The exact name first, then every other held lock that overlaps it: all held locks for a glob,
-- only the held globs for a plain name.
local candidates = {res}
local others = is_glob(res) and redis.call('ZRANGE', KEYS[4], 0, -1) or redis.call('SMEMBERS', GLOB_LOCKS)
for _, o in ipairs(others) do
  if o ~= res and overlaps(res, o) then candidates[#candidates + 1] = o end
end
local conflicts = {}
for _, r in ipairs(candidates) do
  local h = redis.call('HMGET', lock_key(r), 'owner_session_id', 'expires_ms')
  local owner = h[1]
  if owner then
    local exp = tonumber(h[2] or '')
    if exp and exp <= ms then
      release_lock(r, owner, 'expired', ms)
    elseif owner ~= sid then
      conflicts[#conflicts + 1] = {r, owner}
    elseif r == res then
      redis.call('HSET', KEYS[3], 'owner_pid', pid, 'expires_at', expires_at, 'expires_ms', expires_ms, 'reason', reason)
      return {'held', '', redis.call('HGETALL', KEYS[3])}
    end
  end
end

if #conflicts > 0 then
  local sttl = session_ttl_ms()
  local first_live
  for _, c in ipairs(conflicts) do
    local olast = tonumber(redis.call('HGET', session_key(c[2]), 'last_heartbeat_ms') or '')
    c[3] = olast ~= nil and (ms - olast) <= sttl
    if c[3] and not first_live then first_live = c end
  end
  local blocker
  if mode == 'lock' then blocker = first_live or conflicts[1] end
  if mode == 'steal' then blocker = first_live end
  if blocker then
    return {'conflict', blocker[2], redis.call('HGETALL', lock_key(blocker[1])), blocker[3] and '1' or '0', blocker[1]}
  end
end

local stolen, seen = {}, {}
for _, c in ipairs(conflicts) do
  release_lock(c[1], c[2], 'stolen', ms)
  if not seen[c[2]] then
    seen[c[2]] = true
    stolen[#stolen + 1] = c[2]
  end
end

local auto = '0'
local skey = session_key(sid)
if redis.call('EXISTS', skey) == 0 then
  auto = '1'
  local now = iso(ms)
  local blob = '{"auto_registered":true}'
  redis.call('HSET', skey, 'session_id', sid, 'pid', pid, 'host', host, 'role', '', 'task', '', 'blob', blob,
    'phase', '', 'registered_at', now, 'last_heartbeat', now, 'last_heartbeat_ms', ms)
  redis.call('ZADD', SESSIONS, ms, sid)
  emit('session.register', ms, sid, nil, obj('role', js(''), 'task', js(''), 'blob', blob))
end

redis.call('HSET', KEYS[3], 'resource', res, 'owner_session_id', sid, 'owner_pid', pid, 'acquired_at', iso(ms),
  'expires_at', expires_at, 'expires_ms', expires_ms, 'reason', reason)
redis.call('ZADD', KEYS[4], ms, res)
redis.call('SADD', KEYS[5], res)
if is_glob(res) then redis.call('SADD', GLOB_LOCKS, res) end
local p = obj('resource', js(res), 'owner_session', js(sid),
  'expires_at', expires_at ~= '' and js(expires_at) or nil, 'reason', reason ~= '' and js(reason) or nil)
local tx = emit('lock.acquire', ms, sid, res, p)
return {'acquired', tx, redis.call('HGETALL', KEYS[3]), table.concat(stolen, ','), auto}
