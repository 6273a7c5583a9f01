#!lua
--[[
Releases a lock whatever session holds it (an operator's force-release of a dead or stuck
session's lock), as `lock.release` reason `forced`. When an expected owner is given and the lock
is now held by someone else, nothing changes: the operator acted on what they saw, not on a lock
taken since.

KEYS: the prelude's two (events stream, tx_id sequence; see includes/prelude.lua), then
  KEYS[3] the lock hash
ARGV: the prelude's first five (see includes/prelude.lua), then
  ARGV[6] resource   ARGV[7] expected owner session ('' = whoever holds it)
Returns:
  {'missing'} | {'other-owner', owner} | {'released', tx_id, owner}
]]
--- @include "includes/prelude"
local res, expected = ARGV[6], ARGV[7]
local ms = now_ms()
local owner = redis.call('HGET', KEYS[3], 'owner_session_id')
if not owner then return {'missing'} end
if expected ~= '' and owner ~= expected then return {'other-owner', owner} end
return {'released', release_lock(res, owner, 'forced', ms), owner}
