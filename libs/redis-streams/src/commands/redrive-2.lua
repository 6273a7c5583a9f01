#!lua
--[[
Re-drives one dead letter: appends its original fields back to its source stream and deletes it
from the dead-letter stream, atomically, so a second click (or a racing operator) finds nothing
and nothing is delivered twice. The two streams share a hash tag (Keyspace.deadLetter).

KEYS:
  KEYS[1] the dead-letter stream
  KEYS[2] its source stream
ARGV:
  ARGV[1] the dead letter's entry id
  ARGV[2] the original fields as a flat JSON array, in their order (["type",...,"v",...,"data",...])
  ARGV[3] the source stream's approximate MAXLEN cap
Returns:
  {'missing'} | {'redriven', new entry id}
]]
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return {'missing'} end
local fields = cjson.decode(ARGV[2])
if #fields == 0 or #fields % 2 ~= 0 then return redis.error_reply('redrive: fields must be name/value pairs') end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(fields))
redis.call('XDEL', KEYS[1], ARGV[1])
return {'redriven', id}
