#!lua
--[[
Commits one range of a followed file: XADDs every telemetry event, then HSETs the checkpoint past
that range, atomically (a script runs whole). One command instead of a MULTI of N XADDs keeps a
burst of breaches cheap on both sides.

KEYS:
  KEYS[1] the telemetry events stream
  KEYS[2] the checkpoint hash of the source
          (both carry the {events} hash tag, so this runs on Redis Cluster too)
ARGV:
  ARGV[1] checkpoint field (the file path)   ARGV[2] checkpoint JSON
  ARGV[3] MAXLEN ~ cap (0: no trimming)
  ARGV[4..7] entry field names and values shared by every event: 'type', <schema>, 'v', <major>
  ARGV[8] name of the data field ('data')   ARGV[9..] one event JSON each
Returns:
  the number of events appended; 0 when this very checkpoint is stored already (a resent commit)
]]
-- A client resends a command whose reply a dropped connection lost (ioredis does so after a
-- reconnect), though Redis may have run it: the checkpoint it wrote, updated_at included, is then
-- stored already, and appending the range again would duplicate its events.
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then
  return 0
end
local n = 0
local cap = tonumber(ARGV[3])
for i = 9, #ARGV do
  if cap > 0 then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', cap, '*', ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[i])
  else
    redis.call('XADD', KEYS[1], '*', ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[i])
  end
  n = n + 1
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return n
