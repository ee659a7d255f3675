-- complete_job: complete a running job, if the caller still holds its lease (the fencing token)
--
-- A job whose owner asked to cancel it while it ran has lost its lease (cancel_job.lua moved
-- it to "<id>|cancel"): its result is refused and the job ends cancelled now.
--
-- Input:
--   KEYS[1]    leases ZSET (member "<id>|<token>")
--   KEYS[2]    the job HASH
--   KEYS[3]    done:completed ZSET (score finishedAt; trimmed by the workers' beat, not here)
--   KEYS[4]    done:cancelled ZSET
--   KEYS[5]    webhooks ZSET (score = when the callback's next try is due)
--   KEYS[6]    slots HASH (job id -> "<type>|<userId>")
--   ARGV[1]    the lease member "<id>|<token>"
--   ARGV[2]    now_ms (becomes finishedAt and updatedAt)
--   ARGV[3]    result, JSON text (size already checked by the caller)
--   ARGV[4]    retention in ms (PEXPIRE of the finished job)
--   ARGV[5]    job id
--   ARGV[6]    token
--   ARGV[7]    final progress, JSON text, or '' to leave progress as it is
--   ARGV[8]    '1' when the job has a callbackUrl (its delivery is scheduled), else ''
--   ARGV[9]    the events channel
--   ARGV[10]   the job channel prefix
--   ARGV[11]   '1' when the job holds a slot (freed when it ends), else '0'
--
-- Output:
--   'completed'; 'cancelled' when a cancel was requested (the result was refused); or 'stale'
--   when the lease is not held: it expired and was recovered, or the job was handed to someone
--   else. Repeating a call that was applied returns the same outcome again (the job keeps the
--   token of its last attempt), so a lost reply can be retried safely.
--- @include "queue/end_job"
local ending = { now_ms = ARGV[2], retention_ms = ARGV[4], webhooks_key = KEYS[5],
  events_channel = ARGV[9], job_channel = ARGV[10], callback = ARGV[8] == '1',
  slots_key = ARGV[11] == '1' and KEYS[6] or nil }
local fields = {}
if ARGV[7] ~= '' then
  fields = { 'progress', ARGV[7] }
end

if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  local job = redis.call('HMGET', KEYS[2], 'status', 'token', 'cancelRequested')
  if job[2] ~= ARGV[6] then
    return 'stale'
  elseif job[1] == 'completed' or job[1] == 'cancelled' then
    return job[1]
  elseif job[1] == 'processing' and job[3] == '1' then
    redis.call('ZREM', KEYS[1], ARGV[5] .. '|cancel')
    end_job(KEYS[2], ARGV[5], 'cancelled', KEYS[4], fields, ending)
    return 'cancelled'
  end
  return 'stale'
end
fields[#fields + 1] = 'result'
fields[#fields + 1] = ARGV[3]
fields[#fields + 1] = 'error'
fields[#fields + 1] = ''
end_job(KEYS[2], ARGV[5], 'completed', KEYS[3], fields, ending)
return 'completed'
