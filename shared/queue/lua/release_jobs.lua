-- release_jobs: hand running jobs back without spending an attempt (graceful shutdown)
--
-- Optionally signs the worker off too (removes its heartbeat). A job that held a slot frees it.
--
-- Input:
--   KEYS[1]    leases ZSET (member "<id>|<token>")
--   KEYS[2]    ready ZSET (score priority * 1e13 + readyAtMs)
--   KEYS[3]    workers HASH (worker id -> heartbeat JSON)
--   KEYS[4]    lanes ZSET (lanes.lua)
--   KEYS[5]    slots HASH (job id -> "<type>|<userId>")
--   KEYS[6..]  the job HASH of each job handed back, in the order of the ARGV entries
--   ARGV[1]    now_ms (the released jobs' readyAtMs)
--   ARGV[2]    worker id to remove from `workers`, or '' to keep the heartbeat
--   ARGV[3]    the events channel: one PUBLISH "<id> <now_ms>" wakes idle workers
--   ARGV[4]    the job channel prefix: each job handed back is announced on its channel
--   ARGV[5..]  per job, six entries: the lease member "<id>|<token>", the job's priority, its
--              attempts count before this attempt (the claim had added one), its type, its
--              userId, and '1' when it holds a slot (else '0')
--
-- Output:
--   the ids handed back; a job whose lease is no longer held is left alone
--- @include "queue/lanes"
local now_ms = tonumber(ARGV[1])
local released, ready, freed = {}, {}, {}
for i = 5, #ARGV, 6 do
  local member = ARGV[i]
  local id = string.match(member, '^(.*)|')
  if redis.call('ZREM', KEYS[1], member) == 1 then
    if ARGV[i + 5] == '1' then -- (a lease no longer held is not this call's slot to free)
      freed[#freed + 1] = id
    end
    redis.call('HSET', KEYS[6 + (i - 5) / 6], 'status', 'pending', 'attempts', ARGV[i + 2],
      'token', '', 'updatedAt', ARGV[1])
    redis.call('PUBLISH', ARGV[4] .. id, ARGV[1] .. ' pending')
    ready[#ready + 1] = { id = id, score = tonumber(ARGV[i + 1]) * 1e13 + now_ms,
      type = ARGV[i + 3], user = ARGV[i + 4] }
    released[#released + 1] = id
  end
end
if #freed > 0 then
  redis.call('HDEL', KEYS[5], unpack(freed))
end
if #ready > 0 then
  make_ready(KEYS[2], KEYS[4], ready)
end
if #ready > 0 or #freed > 0 then -- jobs to run, or slots free for jobs held back
  redis.call('PUBLISH', ARGV[3], (released[1] or freed[1]) .. ' ' .. ARGV[1])
end
if ARGV[2] ~= '' then
  redis.call('HDEL', KEYS[3], ARGV[2])
end
return released
