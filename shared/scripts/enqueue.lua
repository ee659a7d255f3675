-- enqueue.lua: create one job atomically: idempotency check, rate limits, then the job itself.
-- Built as load_script("ratelimit_lib.lua", "enqueue.lua"), so apply_rate_limits is defined.
--
-- KEYS[1]      job HASH of the new job (job:<id>; for an idempotent request the id is derived
--              from the owner and the key, so a retry names the same hash)
-- KEYS[2]      the ZSET the job joins: `ready` (runs now) or `delayed` (runAt in the future)
-- KEYS[3..]    the rate-limit keys, last: ARGV[1] of them
--
-- ARGV[1]      number of rate-limit keys (the last ARGV[1] entries of KEYS)
-- ARGV[2]      number of rate-limit arguments (the last ARGV[2] entries of ARGV)
-- ARGV[3]      now_ms, the caller's clock (epoch ms)
-- ARGV[4]      "1" when the request carries an idempotency key, else "0"
-- ARGV[5]      job id
-- ARGV[6]      score in KEYS[2]: priority * 1e13 + readyAtMs (ready) or runAt (delayed)
-- ARGV[7]      events channel
-- ARGV[8]      event message "<jobId> <readyAtMs>"
-- ARGV[9]      number of job HASH arguments that follow (field, value, field, value, ...)
-- ARGV[10..]   the job HASH field/value pairs
-- ARGV[..]     the rate-limit arguments, last
--
-- Returns one of:
--   {"replayed", <HGETALL of the existing job>}  the idempotency key is known: nothing consumed
--   {"denied", rl_reply}                          a rate limit denies: nothing written
--   {"created", rl_reply}                         the job exists and workers were told
local n_rl_keys = tonumber(ARGV[1])
local n_rl_args = tonumber(ARGV[2])
local now_ms = tonumber(ARGV[3])

if ARGV[4] == "1" then
  local existing = redis.call("HGETALL", KEYS[1])
  if #existing > 0 then
    return {"replayed", existing}
  end
end

local rl_keys, rl_args = {}, {}
for i = #KEYS - n_rl_keys + 1, #KEYS do
  rl_keys[#rl_keys + 1] = KEYS[i]
end
for i = #ARGV - n_rl_args + 1, #ARGV do
  rl_args[#rl_args + 1] = ARGV[i]
end
local allowed, rl_reply = apply_rate_limits(rl_keys, rl_args, now_ms)
if not allowed then
  return {"denied", rl_reply}
end

local n_fields = tonumber(ARGV[9])
redis.call("HSET", KEYS[1], unpack(ARGV, 10, 9 + n_fields))
redis.call("ZADD", KEYS[2], ARGV[6], ARGV[5])
redis.call("PUBLISH", ARGV[7], ARGV[8])
return {"created", rl_reply}
