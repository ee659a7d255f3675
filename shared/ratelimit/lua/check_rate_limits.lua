-- check_rate_limits: the standalone rate-limit check (ratelimit-check)
--
-- One EVALSHA, one MGET inside, one SET per key written.
--
-- Input:
--   KEYS[1..]  the rate-limit keys, as rl_keys of apply_rate_limits (apply_rate_limits.lua)
--   ARGV[1]    now_ms, epoch milliseconds from the caller's clock
--   ARGV[2..]  rl_args of apply_rate_limits (cost, consume, n, then 4 entries per policy)
--
-- Output:
--   {allowed 1/0, now_ms, then per policy: allowed 1/0, remaining, reset_at_ms, retry_after_ms}
--- @include "ratelimit/apply_rate_limits"

local rl_args = {}
for i = 2, #ARGV do
  rl_args[i - 1] = ARGV[i]
end
local allowed, reply = apply_rate_limits(KEYS, rl_args, tonumber(ARGV[1]))
return {allowed and 1 or 0, unpack(reply)}
