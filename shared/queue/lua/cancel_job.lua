-- cancel_job: cancel a job that has not started, if the caller may see it
--
-- Input:
--   KEYS[1]    job HASH (job:<id>)
--   KEYS[2]    ready ZSET
--   KEYS[3]    delayed ZSET
--   KEYS[4]    done:cancelled ZSET
--   ARGV[1]    job id
--   ARGV[2]    the caller's user id; '' for a service key (may cancel any job)
--   ARGV[3]    now_ms (becomes finishedAt)
--   ARGV[4]    retention in ms (TTL of the cancelled job)
--   ARGV[5]    trim cutoff ms: done:cancelled entries scored below it are removed
--
-- Output:
--   one of
--   {'missing'}                  no such job, or another user's (the caller cannot tell which)
--   {'conflict', <status>}       the job is processing or already finished: nothing changed
--   {'cancelled', <job fields>}  HGETALL-shaped fields of the job as now stored (a job that
--                                was cancelled already is left as it is: cancel is idempotent)
local fields = redis.call('HGETALL', KEYS[1])
local job = {}
for i = 1, #fields, 2 do
  job[fields[i]] = fields[i + 1]
end
if #fields == 0 or (ARGV[2] ~= '' and job['userId'] ~= ARGV[2]) then
  return {'missing'}
end

local status = job['status']
if status == 'cancelled' then
  return {'cancelled', fields}
elseif status == 'pending' then
  redis.call('ZREM', KEYS[2], ARGV[1])
elseif status == 'delayed' then
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  return {'conflict', tostring(status)}
end

redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finishedAt', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[5])

job['status'] = 'cancelled'
job['finishedAt'] = ARGV[3]
local reply = {}
for name, value in pairs(job) do
  reply[#reply + 1] = name
  reply[#reply + 1] = value
end
return {'cancelled', reply}
