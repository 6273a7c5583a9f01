#!lua
--[[
Removes one consumer from a consumer group, but only if at this instant it owns no pending entry
and has been idle (and, on Redis >= 7.2, inactive) for at least the bound. XGROUP DELCONSUMER
drops a consumer's pending entries from the group for good, so the check and the delete are one
step: a consumer handed entries (XREADGROUP, XCLAIM, XAUTOCLAIM) after the caller looked is kept.
A removed consumer that was alive after all loses nothing: its next XREADGROUP recreates it.

KEYS:
  KEYS[1] the stream
ARGV:
  ARGV[1] the group
  ARGV[2] the consumer to remove
  ARGV[3] the idle bound in ms (> 0)
  ARGV[4] the caller's own consumer name (never removed)
Returns:
  'removed' | 'missing' (no such consumer or group) | 'pending' (it owns entries) |
  'active' (idle or inactive below the bound) | 'self'
]]
if ARGV[2] == ARGV[4] then return 'self' end
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
local consumers = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if consumers.err then return 'missing' end
local bound = tonumber(ARGV[3])
for _, c in ipairs(consumers) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  if info['name'] == ARGV[2] then
    if tonumber(info['pending']) ~= 0 then return 'pending' end
    if tonumber(info['idle']) < bound then return 'active' end
    -- Redis 7.2+: ms since the last successful read or claim; -1 when it never had one.
    local inactive = tonumber(info['inactive'])
    if inactive ~= nil and inactive >= 0 and inactive < bound then return 'active' end
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
    return 'removed'
  end
end
return 'missing'
