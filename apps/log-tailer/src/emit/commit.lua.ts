/**
 * One range of a followed file, committed atomically: its telemetry events appended to the
 * telemetry stream and the checkpoint past that range written, or neither. One command instead
 * of a MULTI of N XADDs keeps a burst of breaches cheap on both sides.
 */
export const COMMIT_LUA = `
-- tailer commit: XADD every event, then HSET the checkpoint (atomic: a script runs whole).
-- KEYS[1]  telemetry events stream          KEYS[2]  checkpoint hash of the source
--          (both carry the {events} hash tag, so this runs on Redis Cluster too)
-- ARGV[1]  checkpoint field (the file path)  ARGV[2]  checkpoint JSON
-- ARGV[3]  MAXLEN ~ cap (0: no trimming)
-- ARGV[4..7] entry field names and values shared by every event: 'type', <schema>, 'v', <major>
-- ARGV[8]  name of the data field ('data'); ARGV[9..] one event JSON each
-- Returns the number of events appended.
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
`;
