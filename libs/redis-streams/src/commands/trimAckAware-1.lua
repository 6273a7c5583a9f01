#!lua flags=allow-oom
--[[
Ack-aware trim of one stream, atomic (no group can appear or move in between). A group needs its
smallest pending id (delivered, not acked) and, with nothing pending, its last-delivered id
onwards (that entry is kept too: it saves id arithmetic and costs one entry).

KEYS:
  KEYS[1] the stream
ARGV:
  ARGV[1] hard cap: when the stream is still longer than this after the ack-aware trim, trim it
          to this length anyway (0 = no cap)
  ARGV[2] '1': trim below the lowest needed id approximately (`~`, whole nodes only), else exactly
Returns:
  {lowest id some group still needs ('' when the stream has no group: nothing is trimmed by acks
   then, since nobody has said what it needs), entries removed below it, entries removed by the
   hard cap, length after}
]]
local stream = KEYS[1]
local cap = tonumber(ARGV[1])
if redis.call('EXISTS', stream) == 0 then return {'', 0, 0, 0} end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local lowest, lms, lseq = nil, nil, nil
local function consider(id)
  local ms, seq = parse(id)
  if ms == nil then return end
  if lowest == nil or ms < lms or (ms == lms and seq < lseq) then lowest, lms, lseq = id, ms, seq end
end
local groups = redis.call('XINFO', 'GROUPS', stream)
for _, g in ipairs(groups) do
  local name, pending, last = nil, 0, '0-0'
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1]
    elseif g[i] == 'pending' then pending = tonumber(g[i + 1])
    elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
  end
  if pending > 0 then
    local summary = redis.call('XPENDING', stream, name)
    consider(summary[2])
  else
    consider(last)
  end
end
local trimmed = 0
if lowest ~= nil then
  if ARGV[2] == '1' then
    trimmed = redis.call('XTRIM', stream, 'MINID', '~', lowest)
  else
    trimmed = redis.call('XTRIM', stream, 'MINID', lowest)
  end
end
local dropped = 0
if cap > 0 and redis.call('XLEN', stream) > cap then
  dropped = redis.call('XTRIM', stream, 'MAXLEN', cap)
end
return {lowest or '', trimmed, dropped, redis.call('XLEN', stream)}
