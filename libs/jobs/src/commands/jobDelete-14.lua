#!lua flags=allow-oom
--[[
Removes a finished job's metadata, log stream and secrets together (retention).

KEYS:
  KEYS[1] job hash   KEYS[2] job log stream   KEYS[3] all-jobs zset   KEYS[4] job secrets key
  KEYS[5..14] one status set per name in ARGV[2] (4 + the 10 statuses of JOB_STATUSES)
ARGV:
  ARGV[1] job id   ARGV[2] comma-separated status names matching KEYS[5..]
  ARGV[3] comma-separated statuses that may be deleted (the terminal ones)
Returns:
  1 deleted, 0 refused (the job is not in a deletable status), -1 no such job (index entries cleaned)
]]
--- @include "includes/split"
local current = redis.call('HGET', KEYS[1], 'status')
local names = split(ARGV[2])
if not current then
  redis.call('ZREM', KEYS[3], ARGV[1])
  for i, _ in ipairs(names) do redis.call('SREM', KEYS[4 + i], ARGV[1]) end
  redis.call('DEL', KEYS[2], KEYS[4])
  return -1
end
local ok = false
for _, s in ipairs(split(ARGV[3])) do if s == current then ok = true end end
if not ok then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
redis.call('ZREM', KEYS[3], ARGV[1])
for i, name in ipairs(names) do
  if name == current then redis.call('SREM', KEYS[4 + i], ARGV[1]) end
end
return 1
