-- cancel_job: cancel a job the caller may see: at once if it has not started, by request if running
--
-- A running job's lease member "<id>|<token>" becomes "<id>|cancel" with the same deadline:
-- its worker can no longer renew, report or complete it (it hears "<id> cancel" on the events
-- channel, stops the processor and ends the job with finish_cancelled.lua), and if that worker
-- is gone the expired "<id>|cancel" lease ends the job cancelled (settle.lua).
--
-- Input:
--   KEYS[1]    job HASH (job:<id>)
--   KEYS[2]    ready ZSET
--   KEYS[3]    delayed ZSET
--   KEYS[4]    done:cancelled ZSET
--   KEYS[5]    leases ZSET
--   KEYS[6]    webhooks ZSET (score = when the callback's next try is due)
--   KEYS[7]    lanes ZSET (lanes.lua)
--   ARGV[1]    job id
--   ARGV[2]    the caller's user id; '' for a service key (may cancel any job)
--   ARGV[3]    now_ms (becomes finishedAt and updatedAt)
--   ARGV[4]    retention in ms (TTL of the cancelled job)
--   ARGV[5]    trim cutoff ms: done:cancelled entries scored below it are removed
--   ARGV[6]    the events channel
--   ARGV[7]    the job channel prefix
--
-- Output:
--   one of
--   {'missing'}                  no such job, or another user's (the caller cannot tell which)
--   {'conflict', <status>}       the job has completed or failed: nothing changed
--   {'cancelled', <job fields>}  HGETALL-shaped fields of the job as now stored (a job that
--                                was cancelled already is left as it is: cancel is idempotent)
--   {'requested', <job fields>}  the job is running: its cancel is requested (repeating the
--                                request changes nothing more)
--- @include "queue/end_job"
--- @include "queue/lanes"
local fields = redis.call('HGETALL', KEYS[1])
local job = {}
for i = 1, #fields, 2 do
  job[fields[i]] = fields[i + 1]
end
if #fields == 0 or (ARGV[2] ~= '' and job['userId'] ~= ARGV[2]) then
  return {'missing'}
end

local function as_fields()
  local reply = {}
  for name, value in pairs(job) do
    reply[#reply + 1] = name
    reply[#reply + 1] = value
  end
  return reply
end

local status = job['status']
if status == 'cancelled' then
  return {'cancelled', fields}
elseif status == 'processing' then
  if job['cancelRequested'] ~= '1' then
    local member = ARGV[1] .. '|' .. (job['token'] or '')
    local deadline = redis.call('ZSCORE', KEYS[5], member)
    if deadline then
      redis.call('ZREM', KEYS[5], member)
      redis.call('ZADD', KEYS[5], deadline, ARGV[1] .. '|cancel')
    end
    redis.call('HSET', KEYS[1], 'cancelRequested', '1', 'updatedAt', ARGV[3])
    redis.call('PUBLISH', ARGV[6], ARGV[1] .. ' cancel')
    redis.call('PUBLISH', ARGV[7] .. ARGV[1], ARGV[3] .. ' processing')
    job['cancelRequested'] = '1'
    job['updatedAt'] = ARGV[3]
  end
  return {'requested', as_fields()}
elseif status == 'pending' then -- in `ready`, unless a claim has it under a provisional lease
  unready(KEYS[2], KEYS[7], ARGV[1], job['type'] or '', job['userId'] or '')
elseif status == 'delayed' then
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  return {'conflict', tostring(status)}
end

local callback = (job['callbackUrl'] or '') ~= ''
end_job(KEYS[1], ARGV[1], 'cancelled', KEYS[4], {}, { now_ms = ARGV[3], retention_ms = ARGV[4],
  webhooks_key = KEYS[6], events_channel = ARGV[6], job_channel = ARGV[7], callback = callback,
  announce = true })
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[5])
job['status'] = 'cancelled'
job['finishedAt'] = ARGV[3]
job['updatedAt'] = ARGV[3]
if callback then
  job['webhook'] = WEBHOOK_PENDING
end
return {'cancelled', as_fields()}
