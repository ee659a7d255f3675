-- Rate-limit library, prepended to scripts that apply limits (ratelimit.lua, enqueue.lua).
--
-- apply_rate_limits(rl_keys, rl_args, now_ms) -> allowed, reply
--   rl_keys: table of key names, as built by shared.ratelimit.script_inputs
--   rl_args: table of strings, as built by shared.ratelimit.script_inputs
--   now_ms:  number, the caller's clock in epoch milliseconds
--   allowed: true when every policy admits the request (and, when consuming, the state has been
--            written with a TTL); false when any policy denies (nothing written at all)
--   reply:   flat table parsed by shared.ratelimit.parse_reply
--
-- PLACEHOLDER until the rate-limiting work lands: admits everything, writes nothing.
local function apply_rate_limits(rl_keys, rl_args, now_ms)
  return true, {}
end
