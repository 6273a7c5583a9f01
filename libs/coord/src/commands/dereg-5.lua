#!lua
--[[
Deregisters or evicts a session: `session.dereg`, then `lock.release` for every lock it held.
As a cull it removes only a session whose last heartbeat is older than the deployment's session
TTL (read here, see includes/prelude.lua): the sentinel's cull, where this script is the arbiter
between replicas (exactly one of them sees 'removed'). Each lock is released exactly once: the
session's lock set is read and deleted in this one step, and a lock another session took since is
left alone.

KEYS: the prelude's two (events stream, tx_id sequence; see includes/prelude.lua), then
  KEYS[3] the session hash   KEYS[4] the sessions zset   KEYS[5] the session's lock set
ARGV: the prelude's first five (see includes/prelude.lua), then
  ARGV[6] session_id   ARGV[7] dereg reason   ARGV[8] lock release reason
  ARGV[9] '1' for a cull (only when expired), '' to remove unconditionally
Returns:
  {'missing'} | {'live', last_heartbeat_ms} |
  {'removed', dereg tx_id, {resource...}, {release tx_id...}, HGETALL of the removed session}
]]
--- @include "includes/prelude"
local sid, reason, lock_reason, cull = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
if redis.call('EXISTS', KEYS[3]) == 0 then return {'missing'} end
local ms = now_ms()
local last = tonumber(redis.call('HGET', KEYS[3], 'last_heartbeat_ms')) or 0
if cull == '1' and ms - last <= session_ttl_ms() then return {'live', tostring(last)} end
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
