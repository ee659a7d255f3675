-- take_job: take the one job a wake-up named from `ready`, lease it and start it, in one call
--
-- An enqueue that made one job ready names it in its wake-up ("<id>|<type> <readyAtMs> 1"), so
-- the worker knows the job's key and can declare it: the claim is one request instead of
-- lease_jobs + start_jobs. The job is started only if it is still pending and still in `ready`
-- (another worker may have taken it, or its owner cancelled it); a pending job that is not in
-- `ready` is someone else's (leased, not yet started) and is left alone. When the worker knows
-- other workers listen, it says so (ARGV[6]) and the script tells them on the events channel
-- that the job is taken, so the ones that were waiting their turn for it do not claim at all;
-- or, when the job was not there, that this worker missed it, so that a worker that always wins
-- (and so never learns of the others) hears of it, and starts announcing and taking turns too.
--
-- Redis calls: HMGET; then, the job pending, ZSCORE ready; then, in `ready`, ZREM ready, ZREM
-- lanes, ZADD leases, HSET, PUBLISH on the job's channel; + PUBLISH events when announced
-- (taken or missed).
--
-- Input:
--   KEYS[1]    ready ZSET (score priority * 1e13 + turn)
--   KEYS[2]    leases ZSET (member "<id>|<token>", score = lease deadline in epoch ms)
--   KEYS[3]    lanes ZSET (lanes.lua)
--   KEYS[4]    the job HASH
--   ARGV[1]    job id
--   ARGV[2]    fencing token ("<hex>.<worker id>")
--   ARGV[3]    now_ms, the caller's clock (startedAt, updatedAt; the lease runs to now + timeoutMs)
--   ARGV[4]    the job channel prefix: the start is PUBLISHed on prefix .. id
--   ARGV[5]    the events channel
--   ARGV[6]    the worker id to announce with ("<id> taken <worker id>", "<id> missed <worker
--              id>"), or ''
--
-- Output:
--   {} when the job is not there to take (taken, cancelled, gone); else the started job as
--   start_jobs.lua gives it: { id, token, type, userId, data, attempts, maxAttempts, timeoutMs,
--   priority, callbackUrl }. Repeating a call that was applied returns the job again without
--   counting another attempt.
--- @include "queue/lanes"
local id, token, now_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
local FIELDS = { 'status', 'token', 'type', 'userId', 'data', 'attempts', 'maxAttempts',
  'timeoutMs', 'priority', 'callbackUrl' }

local job = redis.call('HMGET', KEYS[4], unpack(FIELDS))
local timeout_ms = tonumber(job[8])
local attempts = tonumber(job[6]) or 0
local function started()
  return { id, token, job[3] or '', job[4] or '', job[5] or '', attempts, job[7] or '1', job[8],
    job[9] or '0', job[10] or '' }
end

if job[1] == 'processing' and job[2] == token then -- a repeat of a call that was applied
  return started()
end
local function missed()
  if ARGV[6] ~= '' then
    redis.call('PUBLISH', ARGV[5], id .. ' missed ' .. ARGV[6])
  end
  return {}
end

if job[1] ~= 'pending' or not timeout_ms then
  return missed()
end
local score = redis.call('ZSCORE', KEYS[1], id)
if not score then
  return missed()
end
redis.call('ZREM', KEYS[1], id)
redis.call('ZREM', KEYS[3], lane_member(job[3] or '', score, id, job[4] or ''))
redis.call('ZADD', KEYS[2], now_ms + timeout_ms, id .. '|' .. token)
attempts = attempts + 1
redis.call('HSET', KEYS[4], 'status', 'processing', 'attempts', attempts, 'startedAt', ARGV[3],
  'updatedAt', ARGV[3], 'token', token, 'progress', '')
redis.call('PUBLISH', ARGV[4] .. id, ARGV[3] .. ' processing')
if ARGV[6] ~= '' then
  redis.call('PUBLISH', ARGV[5], id .. ' taken ' .. ARGV[6])
end
return started()
