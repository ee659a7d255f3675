-- retry_jobs: put failed or cancelled jobs back in the queue, as new: pending, attempts reset
--
-- A retried job joins `ready` as settle.lua's make_ready does (score priority * step + now),
-- with attempts 0 and runAt now; its error, result, progress, start and finish times, fencing
-- token and cancel request are removed (a late report carrying the old token is refused as
-- stale), its retention TTL is removed and it leaves its done:<status> ZSET. Its watchers hear
-- "<now> pending"; the workers hear one "<id> <now>" on the events channel. Any other job is
-- left as it is and named in the reply: a listed id whose job is not failed or cancelled (in
-- mode '<status>', not that status) is skipped; in mode '<status>' its entry is also removed
-- from that status's ZSET, where it no longer belongs (a job that expired, or moved on).
--
-- Input:
--   KEYS[1]    ready ZSET (score priority * step + readyAtMs)
--   KEYS[2]    done:failed ZSET
--   KEYS[3]    done:cancelled ZSET
--   KEYS[4]    lanes ZSET (lanes.lua)
--   KEYS[5..]  the job HASHes, in the order of ARGV[6..]
--   ARGV[1]    now_ms (becomes runAt and updatedAt)
--   ARGV[2]    the events channel
--   ARGV[3]    the job channel prefix (the id is appended)
--   ARGV[4]    mode: '' (the ids were named by the caller) or 'failed' / 'cancelled' (the ids
--              were read from that status's ZSET)
--   ARGV[5]    the priority step of ready scores (1e13)
--   ARGV[6..]  the job ids
--
-- Output:
--   {{retried id, ...}, {skipped id, its status or '' when there is no such job, ...},
--    remaining}: remaining is what done:<mode> still holds in a mode '<status>' call, else 0
--- @include "queue/lanes"
local now_ms = ARGV[1]
local mode = ARGV[4]
local step = tonumber(ARGV[5])
local done_keys = { failed = KEYS[2], cancelled = KEYS[3] }
local retried, skipped, ready = {}, {}, {}
local left = { failed = {}, cancelled = {} }

for i = 6, #ARGV do
  local id = ARGV[i]
  local key = KEYS[i - 1]
  local job = redis.call('HMGET', key, 'status', 'priority', 'type', 'userId')
  local status = job[1]
  local retryable = done_keys[status] ~= nil and (mode == '' or mode == status)
  if retryable then
    redis.call('HSET', key, 'status', 'pending', 'attempts', '0', 'runAt', now_ms,
      'updatedAt', now_ms)
    redis.call('HDEL', key, 'error', 'result', 'progress', 'startedAt', 'finishedAt', 'token',
      'cancelRequested')
    redis.call('PERSIST', key)
    redis.call('PUBLISH', ARGV[3] .. id, now_ms .. ' pending')
    local left_status = left[status]
    left_status[#left_status + 1] = id
    ready[#ready + 1] = { id = id, score = (tonumber(job[2]) or 0) * step + tonumber(now_ms),
      type = job[3] or '', user = job[4] or '' }
    retried[#retried + 1] = id
  else
    skipped[#skipped + 1] = id
    skipped[#skipped + 1] = status or ''
    if mode ~= '' then
      local left_mode = left[mode]
      left_mode[#left_mode + 1] = id
    end
  end
end

for status, ids in pairs(left) do
  if #ids > 0 then
    redis.call('ZREM', done_keys[status], unpack(ids))
  end
end
if #ready > 0 then
  make_ready(KEYS[1], KEYS[4], ready)
  redis.call('PUBLISH', ARGV[2], retried[1] .. ' ' .. now_ms)
end
local remaining = 0
if mode ~= '' then
  remaining = redis.call('ZCARD', done_keys[mode])
end
return { retried, skipped, remaining }
