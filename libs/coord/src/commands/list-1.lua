--[[
Lists sessions, locks or orders with their hashes in one round trip, on the Redis clock.

KEYS:
  KEYS[1] a zset of ids (sessions, locks or orders)
ARGV:
  ARGV[1] the key prefix of each member's hash
Returns:
  {now_ms, {HGETALL...}} in zset order
]]
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local h = redis.call('HGETALL', ARGV[1] .. id)
  if #h > 0 then out[#out + 1] = h end
end
return {tostring(ms), out}
