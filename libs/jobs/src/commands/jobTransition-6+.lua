#!lua
--[[
Moves one job to a new status atomically with its status log record and its lifecycle event, so
metadata, log and event never disagree and no job gets two terminal records.

KEYS:
  KEYS[1] job hash   KEYS[2] job log stream   KEYS[3] job events stream   KEYS[4] all-jobs zset
  KEYS[5] per-host process set (any key when unused)
  KEYS[6] the set of the new status ARGV[3] (any key when unused)
  KEYS[7..] when ARGV[3] names a new status and the job exists: the set of each status of
          ARGV[2], in its order. Only the sets a change can touch are passed, not all ten.
ARGV:
  ARGV[1] job id
  ARGV[2] allowed current statuses, comma-separated; '-' = the job must not exist yet (create)
  ARGV[3] new status ('' = keep the status and only set fields)
  ARGV[4] hash fields to set, a JSON object of strings (JSON null deletes the field)
  ARGV[5] status log record JSON without seq ('' = no record)
  ARGV[6] lowest seq the record may take (the job's writer's next seq; 0 = no floor)
  ARGV[7] job event data JSON ('' = no event)
  ARGV[8] created-at ms (score in the all-jobs zset; create only)
  ARGV[9] process-set op: 'add', 'rem' or ''
  ARGV[10] log stream MAXLEN   ARGV[11] events stream MAXLEN
  ARGV[12] log schema name  ARGV[13] log schema major  ARGV[14] event schema name  ARGV[15] event schema major
Returns:
  {1, next_seq, previous_status} when done,
  {0, next_seq, current_status} when the current status is not allowed (or, on create, the job exists),
  {-1, 0, ''} when the job does not exist
]]
--- @include "includes/split"
local function next_seq()
  local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  local n = 1
  if #last > 0 then n = tonumber(string.match(last[1][1], '^(%d+)')) + 1 end
  local floor = tonumber(ARGV[6])
  if floor > n then n = floor end
  return n
end

local current = redis.call('HGET', KEYS[1], 'status')
-- Index in ARGV[2] of the current status: its set is KEYS[6 + at].
local at = 0
if ARGV[2] == '-' then
  if current then return {0, next_seq(), current} end
  current = ''
else
  if not current then return {-1, 0, ''} end
  for i, s in ipairs(split(ARGV[2])) do if s == current then at = i end end
  if at == 0 then return {0, next_seq(), current} end
end
if ARGV[3] ~= '' and #KEYS < 6 + at then
  return redis.error_reply('ERR jobTransition: the status sets of ' .. ARGV[3] .. ' and ' .. ARGV[2] .. ' are not all passed')
end

-- One HSET (and at most one HDEL) per change, not one call per field.
local set, del = {}, {}
for k, v in pairs(cjson.decode(ARGV[4])) do
  if v == cjson.null then del[#del + 1] = k else set[#set + 1] = k; set[#set + 1] = v end
end
if #del > 0 then redis.call('HDEL', KEYS[1], unpack(del)) end
if ARGV[3] ~= '' then set[#set + 1] = 'status'; set[#set + 1] = ARGV[3] end
if #set > 0 then redis.call('HSET', KEYS[1], unpack(set)) end
if ARGV[3] ~= '' then
  if at > 0 then redis.call('SREM', KEYS[6 + at], ARGV[1]) end
  redis.call('SADD', KEYS[6], ARGV[1])
end
if ARGV[2] == '-' then redis.call('ZADD', KEYS[4], ARGV[8], ARGV[1]) end
if ARGV[9] == 'add' then redis.call('SADD', KEYS[5], ARGV[1]) elseif ARGV[9] == 'rem' then redis.call('SREM', KEYS[5], ARGV[1]) end

local seq = next_seq()
if ARGV[5] ~= '' then
  local rec = cjson.decode(ARGV[5])
  rec['seq'] = seq
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[10], seq .. '-0',
    'type', ARGV[12], 'v', ARGV[13], 'data', cjson.encode(rec))
  seq = seq + 1
end
if ARGV[7] ~= '' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[11], '*', 'type', ARGV[14], 'v', ARGV[15], 'data', ARGV[7])
end
return {1, seq, current}
