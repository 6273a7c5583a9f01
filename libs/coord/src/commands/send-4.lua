#!lua
--[[
Appends a message to a peer's inbox and writes `inbox.deliver` (the envelope only, never the body).

KEYS: the prelude's two (events stream, tx_id sequence; see includes/prelude.lua), then
  KEYS[3] the peer's inbox list   KEYS[4] the peer's session hash
ARGV: the prelude's first five (see includes/prelude.lua), then
  ARGV[6] from   ARGV[7] to   ARGV[8] kind   ARGV[9] subject   ARGV[10] body
  ARGV[11] '1' to require a registered peer
  ARGV[12] the most bytes a body may have   ARGV[13] the most messages an inbox may hold
Returns:
  {'missing'} | {'too_large', body bytes} | {'full', depth} | {'sent', msg_id, tx_id, message JSON}
]]
--- @include "includes/prelude"
local from, to, kind, subject, body, need = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11]
if need == '1' and redis.call('EXISTS', KEYS[4]) == 0 then return {'missing'} end
-- Refused here, not by the reader: one peer must not make another's inbox unreadable.
if #body > tonumber(ARGV[12]) then return {'too_large', #body} end
local depth = redis.call('LLEN', KEYS[3])
if depth >= tonumber(ARGV[13]) then return {'full', depth} end
local ms = now_ms()
local id = next_ulid(ms)
local msg = obj('msg_id', js(id), 'from_session', js(from), 'to_session', js(to), 'kind', js(kind),
  'subject', js(subject), 'body', js(body), 'ts', js(iso(ms)))
redis.call('RPUSH', KEYS[3], msg)
local tx = emit('inbox.deliver', ms, to, nil, obj('to_session', js(to), 'msg_id', js(id), 'kind', js(kind),
  'from_session', js(from), 'subject', js(subject)))
return {'sent', id, tx, msg}
