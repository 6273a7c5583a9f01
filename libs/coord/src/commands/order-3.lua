#!lua
--[[
Moves a work order along its life: pending -> ack -> done, or pending|ack -> reject; each step
writes `dispatch.ack`, `dispatch.done` or `dispatch.reject` ({order_id, assignee, note?}) and sets
the order hash's `state` (pending|ack|done|reject), `state_at` and `note`. Only the assignee may
act. Repeating the current step is a no-op (no event); a step back, or any step after done or
reject, is refused. done and reject take the order out of the assignee's open orders.

KEYS: the prelude's two (events stream, tx_id sequence; see includes/prelude.lua), then
  KEYS[3] the order hash
ARGV: the prelude's first five (see includes/prelude.lua), then
  ARGV[6] order_id   ARGV[7] action 'ack' | 'done' | 'reject'   ARGV[8] calling session
  ARGV[9] note ('' = none)
Returns:
  {'missing'} | {'not-assignee', assignee} | {'refused', current state} |
  {'same', '', HGETALL order} | {'moved', tx_id, HGETALL order}
]]
--- @include "includes/prelude"
local oid, action, sid, note = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local cur = redis.call('HMGET', KEYS[3], 'assignee', 'state')
local assignee = cur[1]
if not assignee then return {'missing'} end
if assignee ~= sid then return {'not-assignee', assignee} end
local state = cur[2] or 'pending'
if state == action then return {'same', '', redis.call('HGETALL', KEYS[3])} end
local RANK = {pending = 0, ack = 1, done = 2, reject = 2}
if RANK[state] >= 2 or RANK[action] <= RANK[state] then return {'refused', state} end
local ms = now_ms()
redis.call('HSET', KEYS[3], 'state', action, 'state_at', iso(ms), 'note', note)
if action ~= 'ack' then redis.call('ZREM', PREFIX .. 'orders-open:' .. assignee, oid) end
local tx = emit('dispatch.' .. action, ms, assignee, nil,
  obj('order_id', js(oid), 'assignee', js(assignee), 'note', note ~= '' and js(note) or nil))
return {'moved', tx, redis.call('HGETALL', KEYS[3])}
