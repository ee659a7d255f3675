-- lease_jobs: take up to N ready jobs for a worker, each leased until a provisional deadline
--
-- The jobs are popped from `ready` in priority, then FIFO, order, and each is leased with a
-- fresh fencing token. The job hashes are not touched: their keys are only known once the ids
-- are popped, so `start_jobs.lua` starts the jobs in a second call that declares them. A job
-- leased here and never started (the worker died in between) is returned to `ready` by
-- `settle.lua` once the provisional lease expires, without spending an attempt.
--
-- Input:
--   KEYS[1]    ready ZSET (score priority * 1e13 + readyAtMs; ZPOPMIN takes the next job)
--   KEYS[2]    leases ZSET (member "<id>|<token>", score = lease deadline in epoch ms)
--   ARGV[1]    the provisional lease deadline (epoch ms)
--   ARGV[2..]  one fencing token per job wanted ("<hex>.<worker id>", so the lease names its
--              holder): the number of tokens is the most jobs taken
--
-- Output:
--   the ids popped, in order; the i-th id is leased as "<id>|<ARGV[1 + i]>"
local popped = redis.call('ZPOPMIN', KEYS[1], #ARGV - 1)
local ids, leases = {}, {}
for i = 1, #popped, 2 do
  local id = popped[i]
  ids[#ids + 1] = id
  leases[#leases + 1] = ARGV[1]
  leases[#leases + 1] = id .. '|' .. ARGV[1 + #ids]
end
if #ids > 0 then
  redis.call('ZADD', KEYS[2], unpack(leases))
end
return ids
