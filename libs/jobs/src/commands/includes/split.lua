--[[
split(s): the comma-separated parts of s.

KEYS: none (an include)
ARGV: none
Returns: nothing (an include)
]]
local function split(s)
  local out = {}
  for part in string.gmatch(s, '[^,]+') do out[#out + 1] = part end
  return out
end
