#!lua
--[[
Writes an observation at most once per (source, tx_id). One script, so "marked seen" and
"observation written" cannot come apart: a crash leaves either both or neither, and of several
replicas racing on one event exactly one writes.

Also puts a coord event's live-view envelope on the ingest stream once (the same rule, other keys).

KEYS:
  KEYS[1] the "seen" marker of (source, tx_id)   (sentinel:{observations}:seen:...,
          or coord:{ingest}:from-event:... for the live-view envelope)
  KEYS[2] the observations stream                 (sentinel:{observations}, or coord:{ingest})
ARGV:
  ARGV[1] marker time-to-live in ms
  ARGV[2] approximate MAXLEN of the stream (safety cap)
  ARGV[3..] the observation's encoded stream fields
Returns:
  the new entry id, or false (nil) when the event was already observed
]]
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
end
return false
