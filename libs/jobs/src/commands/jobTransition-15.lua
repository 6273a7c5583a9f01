#!lua
--[[
Moves one job to a new status atomically with its status log record and its lifecycle event, so
metadata, log and event never disagree and no job gets two terminal records.

KEYS:
  KEYS[1] job hash   KEYS[2] job log stream   KEYS[3] job events stream   KEYS[4] all-jobs zset
  KEYS[5] per-host process set (any key when unused)
  KEYS[6..15] one status set per name in ARGV[10] (the file name's 15 is 5 + the 10 statuses
          of JOB_STATUSES: adding a status renames this file)
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
  ARGV[10] comma-separated status names, matching KEYS[6..]
  ARGV[11] log stream MAXLEN   ARGV[12] events stream MAXLEN
  ARGV[13] log schema name  ARGV[14] log schema major  ARGV[15] event schema name  ARGV[16] event schema major
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
if ARGV[2] == '-' then
  if current then return {0, next_seq(), current} end
  current = ''
else
  if not current then return {-1, 0, ''} end
  local allowed = false
  for _, s in ipairs(split(ARGV[2])) do if s == current then allowed = true end end
  if not allowed then return {0, next_seq(), current} end
end

local names = split(ARGV[10])
local set_of = {}
for i, name in ipairs(names) do set_of[name] = KEYS[5 + i] end

local fields = cjson.decode(ARGV[4])
for k, v in pairs(fields) do
  if v == cjson.null then redis.call('HDEL', KEYS[1], k) else redis.call('HSET', KEYS[1], k, v) end
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'status', ARGV[3])
  if current ~= '' and set_of[current] then redis.call('SREM', set_of[current], ARGV[1]) end
  redis.call('SADD', set_of[ARGV[3]], ARGV[1])
end
if ARGV[2] == '-' then redis.call('ZADD', KEYS[4], ARGV[8], ARGV[1]) end
if ARGV[9] == 'add' then redis.call('SADD', KEYS[5], ARGV[1]) elseif ARGV[9] == 'rem' then redis.call('SREM', KEYS[5], ARGV[1]) end

local seq = next_seq()
if ARGV[5] ~= '' then
  local rec = cjson.decode(ARGV[5])
  rec['seq'] = seq
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[11], seq .. '-0',
    'type', ARGV[13], 'v', ARGV[14], 'data', cjson.encode(rec))
  seq = seq + 1
end
if ARGV[7] ~= '' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[12], '*', 'type', ARGV[15], 'v', ARGV[16], 'data', ARGV[7])
end
return {1, seq, current}
