#!lua
--[[
Advances a session's last heartbeat (and phase). Writes `session.heartbeat` only when something
changed: the phase, or the previous heartbeat is at least TTL/3 old (the deployment's TTL) (so a session that keeps
heartbeating shows up on the event stream at least about every TTL/3, enough for an event-only
reader to judge liveness, while a busy session's every-few-seconds heartbeats stay off it).

KEYS: the prelude's two (events stream, tx_id sequence; see includes/prelude.lua), then
  KEYS[3] the session hash   KEYS[4] the sessions zset
ARGV: the prelude's first five (see includes/prelude.lua), then
  ARGV[6] session_id   ARGV[7] phase   ARGV[8] '1' when a phase was given (else it is kept)
Returns:
  {'missing'} | {'ok', tx_id or '', HGETALL session}
]]
--- @include "includes/prelude"
local sid, given, has_phase = ARGV[6], ARGV[7], ARGV[8]
local ttl = session_ttl_ms()
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
