-- end_job: end a job (completed, failed or cancelled): the steps every ending shares
--
-- A library, not run alone: complete_job.lua, fail_job.lua, finish_cancelled.lua, cancel_job.lua
-- and settle.lua include it by name and call end_job(job_key, id, status, done_key, fields,
-- ending). It writes the final status with `fields`, starts the retention TTL, records the job
-- in its done:<status> ZSET, schedules the callback when the job has one (the webhooks ZSET,
-- due now; ended outside a worker, also "<id> webhook" on the events channel for the workers'
-- senders: a worker that ends a job hands the delivery to its own sender, so more workers never
-- cost more) and tells the job's watchers on its channel.
--
-- Redis calls: HSET, PEXPIRE, ZADD done (unless the caller defers it), PUBLISH job channel; +
-- ZADD webhooks when the job has a callback (+ PUBLISH events when it is announced); + HDEL
-- slots and PUBLISH events when it held a slot (a job held back by that limit may now run:
-- "<id> <now_ms>" wakes the workers).
--
-- Input:
--   end_job(job_key, id, status, done_key, fields, ending)
--   job_key        the job HASH
--   id             the job id
--   status         'completed', 'failed' or 'cancelled'
--   done_key       the done:<status> ZSET
--   fields         more field/value pairs for the HSET (result, error, progress), may be empty
--   ending.now_ms          epoch ms as a string: finishedAt, updatedAt, the scores
--   ending.retention_ms    PEXPIRE of the ended job
--   ending.webhooks_key    the webhooks ZSET
--   ending.events_channel  the workers' events channel
--   ending.job_channel     the job channel prefix (the id is appended)
--   ending.callback        true when the job has a callbackUrl
--   ending.announce        true to announce the delivery to every worker (no worker ended it)
--   ending.slots_key       the slots HASH, set when the job held a slot (it is freed)
--   ending.done_members    a list to append "<finishedAt>", "<id>" to instead of the ZADD done,
--                          for a caller that records several endings in one ZADD
--
-- Output:
--   none
local WEBHOOK_PENDING = '{"status":"pending","attempts":0,"lastError":null}'

local function end_job(job_key, id, status, done_key, fields, ending)
  local values = { 'status', status, 'finishedAt', ending.now_ms, 'updatedAt', ending.now_ms }
  for _, value in ipairs(fields) do
    values[#values + 1] = value
  end
  if ending.callback then
    values[#values + 1] = 'webhook'
    values[#values + 1] = WEBHOOK_PENDING
  end
  redis.call('HSET', job_key, unpack(values))
  redis.call('PEXPIRE', job_key, ending.retention_ms)
  if ending.done_members then
    table.insert(ending.done_members, ending.now_ms)
    table.insert(ending.done_members, id)
  else
    redis.call('ZADD', done_key, ending.now_ms, id)
  end
  if ending.callback then
    redis.call('ZADD', ending.webhooks_key, ending.now_ms, id)
    if ending.announce then
      redis.call('PUBLISH', ending.events_channel, id .. ' webhook')
    end
  end
  if ending.slots_key then
    redis.call('HDEL', ending.slots_key, id)
    redis.call('PUBLISH', ending.events_channel, id .. ' ' .. ending.now_ms)
  end
  redis.call('PUBLISH', ending.job_channel .. id, ending.now_ms .. ' ' .. status)
end
