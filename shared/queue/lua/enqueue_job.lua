-- enqueue_job: create one job atomically: idempotency check, rate limits, then the job itself
--
-- Input:
--   KEYS[1]    job HASH of the new job (job:<id>; for an idempotent request the id is derived
--              from the owner and the key, so a retry names the same hash)
--   KEYS[2]    the ZSET the job joins: `ready` (runs now) or `delayed` (runAt in the future)
--   KEYS[3..]  the rate-limit keys, last: ARGV[1] of them
--   ARGV[1]    number of rate-limit keys (the last ARGV[1] entries of KEYS)
--   ARGV[2]    number of rate-limit arguments that consume (before the peek arguments)
--   ARGV[3]    number of rate-limit arguments that only read (the last ARGV[3] entries of ARGV;
--              used for the headers of a replay, which consumes nothing)
--   ARGV[4]    now_ms, the caller's clock (epoch ms)
--   ARGV[5]    the request's fingerprint when it carries an idempotency key, else ''
--   ARGV[6]    job id
--   ARGV[7]    score in KEYS[2]: priority * 1e13 + readyAtMs (ready) or runAt (delayed)
--   ARGV[8]    events channel
--   ARGV[9]    event message "<jobId> <readyAtMs>"
--   ARGV[10]   number of job HASH arguments that follow (field, value, field, value, ...)
--   ARGV[11..] the job HASH field/value pairs
--   ARGV[..]   the rate-limit arguments, last: ARGV[2] that consume, then ARGV[3] that peek
--
-- Output:
--   one of
--   {'replayed', <HGETALL of the existing job>, rl_reply}
--              the idempotency key is known: nothing consumed (rl_reply from the peek)
--   {'reused'}
--              the idempotency key is known for a different request (another fingerprint):
--              nothing written
--   {'denied', rl_reply}
--              a rate limit denies: nothing written
--   {'created', rl_reply}
--              the job exists and workers were told
--- @include "ratelimit/apply_rate_limits"
local n_rl_keys = tonumber(ARGV[1])
local n_consume_args = tonumber(ARGV[2])
local n_peek_args = tonumber(ARGV[3])
local now_ms = tonumber(ARGV[4])

local function slice(list, first, count)
  local part = {}
  for i = first, first + count - 1 do
    part[#part + 1] = list[i]
  end
  return part
end

local rl_keys = slice(KEYS, #KEYS - n_rl_keys + 1, n_rl_keys)
local peek_from = #ARGV - n_peek_args + 1

if ARGV[5] ~= '' then
  local existing = redis.call('HGETALL', KEYS[1])
  if #existing > 0 then
    for i = 1, #existing, 2 do
      if existing[i] == 'requestHash' and existing[i + 1] ~= ARGV[5] then
        return {'reused'}
      end
    end
    local _, peek_reply = apply_rate_limits(rl_keys, slice(ARGV, peek_from, n_peek_args), now_ms)
    return {'replayed', existing, peek_reply}
  end
end

local consume_args = slice(ARGV, peek_from - n_consume_args, n_consume_args)
local allowed, rl_reply = apply_rate_limits(rl_keys, consume_args, now_ms)
if not allowed then
  return {'denied', rl_reply}
end

local n_fields = tonumber(ARGV[10])
redis.call('HSET', KEYS[1], unpack(ARGV, 11, 10 + n_fields))
redis.call('ZADD', KEYS[2], ARGV[7], ARGV[6])
redis.call('PUBLISH', ARGV[8], ARGV[9])
return {'created', rl_reply}
