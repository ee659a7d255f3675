-- release_jobs: hand running jobs back without spending an attempt (graceful shutdown)
--
-- Optionally signs the worker off too (removes its heartbeat).
--
-- Input:
--   KEYS[1]    leases ZSET (member "<id>|<token>")
--   KEYS[2]    ready ZSET (score priority * 1e13 + readyAtMs)
--   KEYS[3]    workers HASH (worker id -> heartbeat JSON)
--   KEYS[4..]  the job HASH of each job handed back, in the order of the ARGV triples
--   ARGV[1]    now_ms (the released jobs' readyAtMs)
--   ARGV[2]    worker id to remove from `workers`, or '' to keep the heartbeat
--   ARGV[3]    the events channel: one PUBLISH "<id> <now_ms>" wakes idle workers
--   ARGV[4]    the job channel prefix: each job handed back is announced on its channel
--   ARGV[5..]  per job, three entries: the lease member "<id>|<token>", the job's priority, and
--              its attempts count before this attempt (the claim had added one)
--
-- Output:
--   the ids handed back; a job whose lease is no longer held is left alone
local now_ms = tonumber(ARGV[1])
local released = {}
local ready = {}
for i = 5, #ARGV, 3 do
  local member = ARGV[i]
  if redis.call('ZREM', KEYS[1], member) == 1 then
    local id = string.match(member, '^(.*)|')
    redis.call('HSET', KEYS[4 + (i - 5) / 3], 'status', 'pending', 'attempts', ARGV[i + 2],
      'token', '', 'updatedAt', ARGV[1])
    redis.call('PUBLISH', ARGV[4] .. id, ARGV[1] .. ' pending')
    ready[#ready + 1] = tonumber(ARGV[i + 1]) * 1e13 + now_ms
    ready[#ready + 1] = id
    released[#released + 1] = id
  end
end
if #ready > 0 then
  redis.call('ZADD', KEYS[2], unpack(ready))
  redis.call('PUBLISH', ARGV[3], released[1] .. ' ' .. ARGV[1])
end
if ARGV[2] ~= '' then
  redis.call('HDEL', KEYS[3], ARGV[2])
end
return released
