#!lua flags=allow-oom
--[[
Removes exactly the given messages from an inbox: the second half of an at-least-once read (the
reader took a page with LRANGE, and acknowledges only what it has). A message already gone (a
concurrent reader acknowledged it) is skipped, never something else.

KEYS:
  KEYS[1] an inbox list
ARGV:
  ARGV[1..n] the messages' JSON texts as read (unique: each carries its msg_id)
Returns:
  how many were removed
]]
local removed = 0
for i = 1, #ARGV do
  removed = removed + redis.call('LREM', KEYS[1], 1, ARGV[i])
end
return removed
