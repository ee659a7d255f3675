-- finish_cancelled: end a running job as cancelled once its worker has stopped the processor
--
-- Only for a job whose owner asked to cancel it (cancelRequested) and that still carries the
-- caller's token: anything else is left alone.
--
-- Input:
--   KEYS[1]    leases ZSET (member "<id>|<token>", or "<id>|cancel" after the cancel request)
--   KEYS[2]    the job HASH
--   KEYS[3]    done:cancelled ZSET
--   KEYS[4]    webhooks ZSET (score = when the callback's next try is due)
--   KEYS[5]    slots HASH (job id -> "<type>|<userId>")
--   ARGV[1]    job id
--   ARGV[2]    token
--   ARGV[3]    now_ms (becomes finishedAt and updatedAt)
--   ARGV[4]    retention in ms (PEXPIRE of the cancelled job)
--   ARGV[5]    '1' when the job has a callbackUrl (its delivery is scheduled), else ''
--   ARGV[6]    the events channel
--   ARGV[7]    the job channel prefix
--   ARGV[8]    '1' when the job holds a slot (freed when it ends), else '0'
--
-- Output:
--   'cancelled' (also when a repeat finds it done), or 'stale': no cancel was requested, or the
--   job is not the caller's attempt any more
--- @include "queue/end_job"
local job = redis.call('HMGET', KEYS[2], 'status', 'token', 'cancelRequested')
if job[2] ~= ARGV[2] then
  return 'stale'
elseif job[1] == 'cancelled' then
  return 'cancelled'
elseif job[1] ~= 'processing' or job[3] ~= '1' then
  return 'stale'
end
redis.call('ZREM', KEYS[1], ARGV[1] .. '|cancel', ARGV[1] .. '|' .. ARGV[2])
end_job(KEYS[2], ARGV[1], 'cancelled', KEYS[3], {}, { now_ms = ARGV[3], retention_ms = ARGV[4],
  webhooks_key = KEYS[4], events_channel = ARGV[6], job_channel = ARGV[7],
  callback = ARGV[5] == '1', slots_key = ARGV[8] == '1' and KEYS[5] or nil })
return 'cancelled'
