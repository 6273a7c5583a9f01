#!lua
--[[
Registers a session. Idempotent on (host, pid, session_id): the same triple only refreshes the
record and last_heartbeat; a new triple writes `session.register`.

KEYS: the prelude's two (events stream, tx_id sequence; see includes/prelude.lua), then
  KEYS[3] the session hash   KEYS[4] the sessions zset (score = last heartbeat ms)
ARGV: the prelude's first five (see includes/prelude.lua), then
  ARGV[6] session_id   ARGV[7] host   ARGV[8] pid   ARGV[9] role   ARGV[10] task
  ARGV[11] blob (JSON text)
Returns:
  {'registered'|'refreshed', tx_id or '', HGETALL session}
]]
--- @include "includes/prelude"
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
