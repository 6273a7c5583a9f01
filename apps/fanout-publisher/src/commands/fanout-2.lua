#!lua
--[[
Fans a batch of coord op envelopes out, each exactly once per ingest entry id: appended to the
replay stream and published on `logs.coord.<level>`, in ingest order.

KEYS:
  KEYS[1] the replay stream (`logs:stream:coord`)
  KEYS[2] the dedup zset of ingest ids (same slot, see Keyspace.coordReplayDedup)
ARGV:
  ARGV[1] now ms   ARGV[2] dedup window ms   ARGV[3] replay MAXLEN (approximate)
  ARGV[4] the channel prefix (`<ns>:logs.coord.`)
  ARGV[5..] per envelope 5 values: ingest entry id, level, msg, session, envelope JSON
Returns:
  one flag per envelope: 1 when fanned out, 0 when its id was already in the dedup set (a
  redelivery after a crash between the fan-out and the ack), so replay never holds one twice
]]
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (tonumber(ARGV[1]) - tonumber(ARGV[2])))
local done = {}
for i = 5, #ARGV, 5 do
  local new = redis.call('ZADD', KEYS[2], 'NX', ARGV[1], ARGV[i])
  done[#done + 1] = new
  if new == 1 then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'level', ARGV[i + 1], 'msg', ARGV[i + 2],
      'session', ARGV[i + 3], 'type', 'coord-op', 'v', '0', 'data', ARGV[i + 4])
    redis.call('PUBLISH', ARGV[4] .. ARGV[i + 1], ARGV[i + 4])
  end
end
return done
