-- complete_job: complete a running job, if the caller still holds its lease (the fencing token)
--
-- Input:
--   KEYS[1]    leases ZSET (member "<id>|<token>")
--   KEYS[2]    the job HASH
--   KEYS[3]    done:completed ZSET (score finishedAt; trimmed by the workers' beat, not here)
--   ARGV[1]    the lease member "<id>|<token>"
--   ARGV[2]    now_ms (becomes finishedAt)
--   ARGV[3]    result, JSON text (size already checked by the caller)
--   ARGV[4]    retention in ms (PEXPIRE of the finished job)
--   ARGV[5]    job id
--   ARGV[6]    token
--   ARGV[7]    final progress, JSON text, or '' to leave progress as it is
--
-- Output:
--   'completed', or 'stale' when the lease is not held: it expired and was recovered, or the job
--   was handed to someone else. Repeating a call that was applied returns 'completed' again (the
--   job keeps the token of its last attempt), so a lost reply can be retried safely.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  local job = redis.call('HMGET', KEYS[2], 'status', 'token')
  if job[1] == 'completed' and job[2] == ARGV[6] then
    return 'completed'
  end
  return 'stale'
end
local fields = { 'status', 'completed', 'result', ARGV[3], 'finishedAt', ARGV[2], 'error', '' }
if ARGV[7] ~= '' then
  fields[#fields + 1] = 'progress'
  fields[#fields + 1] = ARGV[7]
end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[5])
return 'completed'
