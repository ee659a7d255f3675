-- complete_job: complete running jobs, each if the caller still holds its lease (fencing token)
--
-- One call completes one job or several (a worker sends the completes that fall due together in
-- one request); each is answered on its own. A job whose owner asked to cancel it while it ran
-- has lost its lease (cancel_job.lua moved it to "<id>|cancel"): its result is refused and the
-- job ends cancelled now.
--
-- Redis calls: one job: ZREM lease; several: ZMSCORE leases, then one ZREM of those held. Per
-- job completed: HSET, PEXPIRE, PUBLISH job channel (end_job.lua; + ZADD webhooks with a
-- callback, + HDEL slots and PUBLISH events with a slot); one ZADD done:completed for them all.
-- A job not held: HMGET (+ ZREM of its cancel lease and end_job when it ends cancelled).
--
-- Input:
--   KEYS[1]    leases ZSET (member "<id>|<token>")
--   KEYS[2]    done:completed ZSET (score finishedAt; trimmed by the workers' beat, not here)
--   KEYS[3]    done:cancelled ZSET
--   KEYS[4]    webhooks ZSET (score = when the callback's next try is due)
--   KEYS[5]    slots HASH (job id -> "<type>|<userId>")
--   KEYS[6..]  the job HASH of each job, in the order of the ARGV entries
--   ARGV[1]    now_ms (becomes finishedAt and updatedAt)
--   ARGV[2]    retention in ms (PEXPIRE of the finished job)
--   ARGV[3]    the events channel
--   ARGV[4]    the job channel prefix
--   ARGV[5..]  per job, six entries: its id; its token; its result, JSON text (size already
--              checked by the caller); its final progress, JSON text, or '' to leave progress
--              as it is; '1' when it has a callbackUrl (its delivery is scheduled), else '';
--              '1' when it holds a slot (freed when it ends), else '0'
--
-- Output:
--   per job, in order: 'completed'; 'cancelled' when a cancel was requested (the result was
--   refused); or 'stale' when the lease is not held: it expired and was recovered, or the job
--   was handed to someone else. Repeating a call that was applied returns the same outcomes
--   again (each job keeps the token of its last attempt), so a lost reply can be retried.
--- @include "queue/end_job"
local JOB_ARGS = 6
local jobs = {}
for i = 6, #KEYS do
  local at = 5 + JOB_ARGS * (i - 6)
  jobs[#jobs + 1] = { key = KEYS[i], id = ARGV[at], token = ARGV[at + 1], result = ARGV[at + 2],
    progress = ARGV[at + 3], callback = ARGV[at + 4] == '1', slot = ARGV[at + 5] == '1',
    member = ARGV[at] .. '|' .. ARGV[at + 1] }
end

-- which leases are held: each taken out of `leases`
local function take_leases()
  if #jobs == 1 then
    return { redis.call('ZREM', KEYS[1], jobs[1].member) == 1 }
  end
  local members = {}
  for i, job in ipairs(jobs) do
    members[i] = job.member
  end
  local scores, held, taken = redis.call('ZMSCORE', KEYS[1], unpack(members)), {}, {}
  for i = 1, #jobs do
    held[i] = scores[i] ~= false
    if held[i] then
      taken[#taken + 1] = members[i]
    end
  end
  if #taken > 0 then
    redis.call('ZREM', KEYS[1], unpack(taken))
  end
  return held
end

local function ending_of(job, defer_done)
  return { now_ms = ARGV[1], retention_ms = ARGV[2], webhooks_key = KEYS[4],
    events_channel = ARGV[3], job_channel = ARGV[4], callback = job.callback,
    slots_key = job.slot and KEYS[5] or nil, done_members = defer_done }
end

local function progress_fields(job)
  if job.progress ~= '' then
    return { 'progress', job.progress }
  end
  return {}
end

-- a job whose lease is not held: a repeat, a cancel requested while it ran, or stale
local function not_held(job)
  local stored = redis.call('HMGET', job.key, 'status', 'token', 'cancelRequested')
  if stored[2] ~= job.token then
    return 'stale'
  elseif stored[1] == 'completed' or stored[1] == 'cancelled' then
    return stored[1]
  elseif stored[1] == 'processing' and stored[3] == '1' then
    redis.call('ZREM', KEYS[1], job.id .. '|cancel')
    end_job(job.key, job.id, 'cancelled', KEYS[3], progress_fields(job), ending_of(job, nil))
    return 'cancelled'
  end
  return 'stale'
end

local held, outcomes, completed = take_leases(), {}, {}
for i, job in ipairs(jobs) do
  if held[i] then
    local fields = progress_fields(job)
    fields[#fields + 1] = 'result'
    fields[#fields + 1] = job.result
    fields[#fields + 1] = 'error'
    fields[#fields + 1] = ''
    end_job(job.key, job.id, 'completed', KEYS[2], fields, ending_of(job, completed))
    outcomes[i] = 'completed'
  else
    outcomes[i] = not_held(job)
  end
end
if #completed > 0 then
  redis.call('ZADD', KEYS[2], unpack(completed))
end
return outcomes
