--[[
Takes a lock (lock / steal / force). A lock past its expires_at is released first (`lock.release`
reason `expired`). Held by the caller: refreshed, no event. Held by another: 'lock' -> conflict;
'steal' -> conflict while the owner is live (session present and heartbeat within the session
TTL); otherwise (or 'force') the owner gets `lock.release` reason `stolen`, then the caller's
`lock.acquire`.

KEYS:
  KEYS[1] the coord events stream
  KEYS[2] the tx_id sequence key
  KEYS[3] the lock hash
  KEYS[4] the locks zset
  KEYS[5] the caller's lock set
ARGV:
  ARGV[1..5] the prelude's: key prefix, event source, ULID randomness, events MAXLEN cap, now
            (see includes/prelude.lua)
  ARGV[6] session_id   ARGV[7] pid   ARGV[8] resource   ARGV[9] lock TTL in ms or ''
  ARGV[10] reason   ARGV[11] mode 'lock' | 'steal' | 'force'
  ARGV[12] session TTL in ms (liveness of the owner)
Returns:
  {'conflict', owner, HGETALL lock, owner live '1'|'0'} | {'held', '', HGETALL lock} |
  {'acquired', tx_id, HGETALL lock, stolen_from or ''}
]]
--- @include "includes/prelude"
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
