#!lua
--[[
Writes a batch of observations, each at most once per (source, tx_id). Marking an event seen and
writing its entry happen in one script, so they cannot come apart: a crash leaves either both or
neither, and of several replicas racing on one event exactly one writes it. One call per batch
(not one per event): the per-call cost, in Redis and in the client, was most of the sentinel's.

Also puts coord events' live-view envelopes on the ingest stream once (the same rule, other keys).

KEYS:
  KEYS[1]    the stream written to                   (sentinel:{observations}, or coord:{ingest})
  KEYS[2..]  the "seen" marker of each item's (source, tx_id), in order
             (sentinel:{observations}:seen:..., or coord:{ingest}:from-event:...)
ARGV:
  ARGV[1] marker time-to-live in ms
  ARGV[2] approximate MAXLEN of the stream (safety cap)
  ARGV[3] how many stream fields each item has (n)
  ARGV[4..] the items' encoded stream fields, n per item, in the order of their markers
Returns:
  one reply per item, in order: the new entry id, or false (nil) when it was already observed
]]
local width = tonumber(ARGV[3])
local out = {}
for i = 2, #KEYS do
  local at = 4 + (i - 2) * width
  if redis.call('SET', KEYS[i], '1', 'NX', 'PX', ARGV[1]) then
    out[i - 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, at, at + width - 1))
  else
    out[i - 1] = false
  end
end
return out
