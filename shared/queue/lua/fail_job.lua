-- fail_job: record a failed attempt of a running job: schedule a retry or fail it for good
--
-- Only while the caller still holds the job's lease. A retry sets status delayed, due at the
-- backoff time the caller computed; the job fails for good when its attempts are used up or the
-- error is permanent.
--
-- Input:
--   KEYS[1]    leases ZSET (member "<id>|<token>")
--   KEYS[2]    the job HASH
--   KEYS[3]    delayed ZSET (score = due time)
--   KEYS[4]    done:failed ZSET (score finishedAt; trimmed by the workers' beat, not here)
--   ARGV[1]    the lease member "<id>|<token>"
--   ARGV[2]    now_ms
--   ARGV[3]    error, JSON text {"message", "kind"}
--   ARGV[4]    retry at (epoch ms), or 0 to fail the job now (attempts used up, or permanent)
--   ARGV[5]    retention in ms (PEXPIRE of a failed job)
--   ARGV[6]    job id
--   ARGV[7]    token
--   ARGV[8]    final progress, JSON text, or '' to leave progress as it is
--
-- Output:
--   'retrying', 'failed', or 'stale' when the lease is not held. Repeating a call that was
--   applied returns its outcome again while the job still carries this token.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  local job = redis.call('HMGET', KEYS[2], 'status', 'token')
  if job[2] == ARGV[7] and job[1] == 'failed' then
    return 'failed'
  end
  if job[2] == ARGV[7] and job[1] == 'delayed' then
    return 'retrying'
  end
  return 'stale'
end
local retry_at = tonumber(ARGV[4])
local fields = { 'error', ARGV[3] }
if ARGV[8] ~= '' then
  fields[#fields + 1] = 'progress'
  fields[#fields + 1] = ARGV[8]
end
if retry_at > 0 then
  fields[#fields + 1] = 'status'
  fields[#fields + 1] = 'delayed'
  fields[#fields + 1] = 'runAt'
  fields[#fields + 1] = ARGV[4]
  redis.call('HSET', KEYS[2], unpack(fields))
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[6])
  return 'retrying'
end
fields[#fields + 1] = 'status'
fields[#fields + 1] = 'failed'
fields[#fields + 1] = 'finishedAt'
fields[#fields + 1] = ARGV[2]
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[6])
return 'failed'
