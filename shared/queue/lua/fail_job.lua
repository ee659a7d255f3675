-- fail_job: record a failed attempt of a running job: schedule a retry or fail it for good
--
-- Only while the caller still holds the job's lease. A retry sets status delayed, due at the
-- backoff time the caller computed; the job fails for good when its attempts are used up or the
-- error is permanent. A job whose owner asked to cancel it while it ran ends cancelled instead.
-- The attempt joins the job's `history` (attempt_history.lua).
--
-- Input:
--   KEYS[1]    leases ZSET (member "<id>|<token>")
--   KEYS[2]    the job HASH
--   KEYS[3]    delayed ZSET (score = due time)
--   KEYS[4]    done:failed ZSET (score finishedAt; trimmed by the workers' beat, not here)
--   KEYS[5]    done:cancelled ZSET
--   KEYS[6]    webhooks ZSET (score = when the callback's next try is due)
--   KEYS[7]    slots HASH (job id -> "<type>|<userId>")
--   ARGV[1]    the lease member "<id>|<token>"
--   ARGV[2]    now_ms
--   ARGV[3]    error, JSON text {"message", "kind"}
--   ARGV[4]    retry at (epoch ms), or 0 to fail the job now (attempts used up, or permanent)
--   ARGV[5]    retention in ms (PEXPIRE of a failed job)
--   ARGV[6]    job id
--   ARGV[7]    token
--   ARGV[8]    final progress, JSON text, or '' to leave progress as it is
--   ARGV[9]    '1' when the job has a callbackUrl (its delivery is scheduled), else ''
--   ARGV[10]   the events channel
--   ARGV[11]   the job channel prefix
--   ARGV[12]   '1' when the job holds a slot (freed, retried or not), else '0'
--
-- Output:
--   'retrying', 'failed', 'cancelled' (a cancel was requested), or 'stale' when the lease is
--   not held. Repeating a call that was applied returns its outcome again while the job still
--   carries this token.
--- @include "queue/end_job"
--- @include "queue/attempt_history"
local ending = { now_ms = ARGV[2], retention_ms = ARGV[5], webhooks_key = KEYS[6],
  events_channel = ARGV[10], job_channel = ARGV[11], callback = ARGV[9] == '1',
  slots_key = ARGV[12] == '1' and KEYS[7] or nil }
local progress = {}
if ARGV[8] ~= '' then
  progress = { 'progress', ARGV[8] }
end

if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  local job = redis.call('HMGET', KEYS[2], 'status', 'token', 'cancelRequested')
  if job[2] ~= ARGV[7] then
    return 'stale'
  elseif job[1] == 'failed' or job[1] == 'cancelled' then
    return job[1]
  elseif job[1] == 'delayed' then
    return 'retrying'
  elseif job[1] == 'processing' and job[3] == '1' then
    redis.call('ZREM', KEYS[1], ARGV[6] .. '|cancel')
    end_job(KEYS[2], ARGV[6], 'cancelled', KEYS[5], progress, ending)
    return 'cancelled'
  end
  return 'stale'
end

local retry_at = tonumber(ARGV[4])
local before = redis.call('HMGET', KEYS[2], 'history', 'attempts')
local outcome = retry_at > 0 and 'retrying' or 'failed'
local fields = { 'error', ARGV[3], 'history', with_attempt(before[1], before[2], outcome, ARGV[2],
  ARGV[3]) }
for _, value in ipairs(progress) do
  fields[#fields + 1] = value
end
if retry_at > 0 then
  fields[#fields + 1] = 'status'
  fields[#fields + 1] = 'delayed'
  fields[#fields + 1] = 'runAt'
  fields[#fields + 1] = ARGV[4]
  fields[#fields + 1] = 'updatedAt'
  fields[#fields + 1] = ARGV[2]
  redis.call('HSET', KEYS[2], unpack(fields))
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[6])
  if ending.slots_key then
    redis.call('HDEL', ending.slots_key, ARGV[6])
    redis.call('PUBLISH', ARGV[10], ARGV[6] .. ' ' .. ARGV[2])
  end
  redis.call('PUBLISH', ARGV[11] .. ARGV[6], ARGV[2] .. ' delayed')
  return 'retrying'
end
end_job(KEYS[2], ARGV[6], 'failed', KEYS[4], fields, ending)
return 'failed'
