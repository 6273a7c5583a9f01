#!lua
--[[
Releases a lock; only its owner may (`lock.release` reason `unlock`). A lock past its expiry is
released as `expired` and reported missing.

KEYS: the prelude's two (events stream, tx_id sequence; see includes/prelude.lua), then
  KEYS[3] the lock hash
ARGV: the prelude's first five (see includes/prelude.lua), then
  ARGV[6] session_id   ARGV[7] resource
Returns:
  {'missing'} | {'not-owner', owner} | {'released', tx_id}
]]
--- @include "includes/prelude"
local sid, res = ARGV[6], ARGV[7]
local ms = now_ms()
local owner = redis.call('HGET', KEYS[3], 'owner_session_id')
if not owner then return {'missing'} end
if owner == sid then return {'released', release_lock(res, sid, 'unlock', ms)} end
local exp = tonumber(redis.call('HGET', KEYS[3], 'expires_ms') or '')
if exp and exp <= ms then
  release_lock(res, owner, 'expired', ms)
  return {'missing'}
end
return {'not-owner', owner}
