--[[
Takes every message of an inbox at once (destructive, atomic).

KEYS:
  KEYS[1] an inbox list
ARGV:
  none
Returns:
  the messages' JSON texts, oldest first
]]
local all = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return all
