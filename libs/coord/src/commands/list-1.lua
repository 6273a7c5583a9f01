#!lua flags=no-writes
--[[
Lists sessions, locks or orders with their hashes in one round trip, on the Redis clock.

KEYS:
  KEYS[1] a zset of ids (sessions, locks or orders)
ARGV:
  ARGV[1] the key prefix of each member's hash
  ARGV[2] the coord config hash (optional), for the deployment's session TTL
  ARGV[3] a key prefix (optional): each member's ZCARD of ARGV[3] .. id is returned (open orders)
Returns:
  {now_ms, {HGETALL...} in zset order, session_ttl_ms or '', {ZCARD...} in the same order}
]]
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out, counts = {}, {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local h = redis.call('HGETALL', ARGV[1] .. id)
  if #h > 0 then
    out[#out + 1] = h
    if ARGV[3] then counts[#counts + 1] = redis.call('ZCARD', ARGV[3] .. id) end
  end
end
local ttl = ''
if ARGV[2] then ttl = redis.call('HGET', ARGV[2], 'session_ttl_ms') or '' end
return {tostring(ms), out, ttl, counts}
