#!lua
--[[
Issues a work order (`dispatch.issue`) in state `pending`, and adds it to the assignee's open
orders (`orders-open:<assignee>`, scored by issue time, which `coord orders` reads oldest first).
Re-issuing an identical order is a no-op; a different order under the same id is a conflict.

KEYS: the prelude's two (events stream, tx_id sequence; see includes/prelude.lua), then
  KEYS[3] the order hash (prefix .. 'dispatch:' .. id; ignored when the id is generated here)
  KEYS[4] the orders zset
ARGV: the prelude's first five (see includes/prelude.lua), then
  ARGV[6] order_id, or '' to make a ULID   ARGV[7] assignee   ARGV[8] ticket
  ARGV[9] issuer session
Returns:
  {'issued', tx_id, HGETALL order} | {'exists', '', HGETALL order} | {'conflict', '', HGETALL order}
]]
--- @include "includes/prelude"
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
redis.call('HSET', key, 'order_id', oid, 'assignee', assignee, 'ticket', ticket, 'issued_by', issuer, 'issued_at', iso(ms),
  'state', 'pending', 'state_at', iso(ms))
redis.call('ZADD', KEYS[4], ms, oid)
redis.call('ZADD', PREFIX .. 'orders-open:' .. assignee, ms, oid)
local tx = emit('dispatch.issue', ms, assignee, nil, obj('order_id', js(oid), 'assignee', js(assignee), 'ticket', js(ticket)))
return {'issued', tx, redis.call('HGETALL', key)}
