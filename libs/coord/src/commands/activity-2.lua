#!lua
--[[
Writes the agent activity the Claude Code hook (apps/cli/src/hooks/coordbus-hook.sh) spooled
since its last flush: one stream entry per event and, per session, the latest one in a hash (what
the fleet console's "now" and "needs you" views read). The hook runs this with redis-cli, so the JSON is built here (cjson
escapes it correctly) rather than in sh. A line's clock is the hook's own (seconds since boot
from /proc/uptime, or epoch seconds where there is no /proc); with ARGV[2], the same clock when
the batch was sent, it dates each event against the server's TIME, so a spooled event keeps the
time it happened.

KEYS:
  KEYS[1] the activity stream (Keyspace.activityStream)
  KEYS[2] the latest activity per session (Keyspace.activityLast)
ARGV:
  ARGV[1] approximate MAXLEN of the stream
  ARGV[2] the hook's clock now
  ARGV[3] the spool: lines `clock TAB event TAB session TAB tool TAB path TAB command TAB
          exit_code TAB message`, the text fields raw JSON string contents (still escaped)
Returns:
  the number of entries written
]]
local maxlen = tonumber(ARGV[1]) or 10000
local clock_now = tonumber(ARGV[2]) or 0
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- Fields are cut (at a UTF-8 boundary) so one huge command cannot bloat every entry.
local function text(raw, max)
  if raw == nil or raw == '' then return nil end
  local ok, s = pcall(cjson.decode, '"' .. raw .. '"')
  if not ok or type(s) ~= 'string' then s = raw end
  if #s > max then
    local cut = max
    while cut > 0 do
      local b = string.byte(s, cut + 1)
      if b == nil or b < 0x80 or b >= 0xC0 then break end
      cut = cut - 1
    end
    s = string.sub(s, 1, cut)
  end
  return s
end

--- @include "includes/iso"

local written = 0
for line in string.gmatch(ARGV[3] or '', '[^\n]+') do
  local f = {}
  local from = 1
  for _ = 1, 8 do
    local tab = string.find(line, '\t', from, true)
    if tab then
      f[#f + 1] = string.sub(line, from, tab - 1)
      from = tab + 1
    else
      f[#f + 1] = string.sub(line, from)
      from = #line + 2
    end
  end
  local sid, event = f[3], f[2]
  if sid ~= nil and sid ~= '' and event ~= nil and event ~= '' then
    local ms = now_ms
    local clock = tonumber(f[1])
    if clock and clock <= clock_now then ms = now_ms - math.floor((clock_now - clock) * 1000) end
    local entry = { session_id = sid, event = event, ts = iso(ms) }
    entry.tool = text(f[4], 200)
    entry.path = text(f[5], 1024)
    entry.command = text(f[6], 1024)
    entry.exit_code = tonumber(f[7])
    entry.message = text(f[8], 1024)
    local json = cjson.encode(entry)
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'type', 'agent-activity', 'v', '1', 'data', json)
    redis.call('HSET', KEYS[2], sid, json)
    written = written + 1
  end
end
return written
