--[[
iso(ms): milliseconds since the epoch as RFC 3339 UTC with milliseconds
(`2026-06-01T12:00:00.000Z`), the `ts` of every coord event and agent activity entry. Redis Lua
has no date library: the civil date comes from the day count (H. Hinnant's days-to-civil algorithm).

KEYS: none (an include).
ARGV: none.
Returns: nothing (an include).
]]
local function iso(ms)
  local s = math.floor(ms / 1000)
  local msr = ms - s * 1000
  local days = math.floor(s / 86400)
  local rem = s - days * 86400
  local h = math.floor(rem / 3600)
  rem = rem - h * 3600
  local mi = math.floor(rem / 60)
  local se = rem - mi * 60
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d, h, mi, se, msr)
end
