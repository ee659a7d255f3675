-- check_alerts: read what the configured alerts measure, and the alerts' state, in one call
--
-- Only what ARGV[1] asks for is read, so an alert that is not configured costs nothing.
--
-- Input:
--   KEYS[1]    ready ZSET (score priority * step + readyAtMs)
--   KEYS[2]    done:completed ZSET (score finishedAt)
--   KEYS[3]    done:failed ZSET (score finishedAt)
--   KEYS[4]    workers HASH (worker id -> heartbeat JSON {lastSeenMs, ...})
--   KEYS[5]    today's usage STRING (billed commands counted by the product)
--   KEYS[6]    alerts HASH (condition -> its state, JSON)
--   ARGV[1]    what to read, one letter each: 'p' pending jobs (ZCARD ready); 'o' the oldest
--              pending job (ZCARD ready and each priority band's head); 'f' jobs finished in the
--              last hour (2 ZCOUNT); 'w' live workers (HGETALL workers); 'u' today's usage (GET)
--   ARGV[2]    one hour ago, ms
--   ARGV[3]    stale cutoff ms: a worker last seen before it is not live
--   ARGV[4]    the priority step of ready scores (1e13)
--
-- Output:
--   {pending, {oldest ready score of each non-empty band...}, completedLastHour,
--    failedLastHour, liveWorkers, usage, {condition, state, ...}, calls}: a number not asked
--   for is -1; `calls` is how many Redis calls this script made
--- @include "queue/ready_band_heads"
local wanted = ARGV[1]
local calls = 1 -- the HGETALL of the alerts' state
local function asked(letter)
  return string.find(wanted, letter, 1, true) ~= nil
end

local pending, heads = -1, {}
if asked('p') or asked('o') then
  pending = redis.call('ZCARD', KEYS[1])
  calls = calls + 1
end
if asked('o') then
  local band_calls
  heads, band_calls = ready_band_heads(KEYS[1], pending, tonumber(ARGV[4]))
  calls = calls + band_calls
end

local completed, failed = -1, -1
if asked('f') then
  completed = redis.call('ZCOUNT', KEYS[2], ARGV[2], '+inf')
  failed = redis.call('ZCOUNT', KEYS[3], ARGV[2], '+inf')
  calls = calls + 2
end

local live = -1
if asked('w') then
  live = 0
  local stale_cutoff = tonumber(ARGV[3])
  local workers = redis.call('HGETALL', KEYS[4])
  calls = calls + 1
  for i = 2, #workers, 2 do
    local ok, beat = pcall(cjson.decode, workers[i])
    local seen = ok and type(beat) == 'table' and tonumber(beat['lastSeenMs'])
    if seen and seen >= stale_cutoff then
      live = live + 1
    end
  end
end

local usage = -1
if asked('u') then
  usage = tonumber(redis.call('GET', KEYS[5]) or '0') or 0
  calls = calls + 1
end

local states = redis.call('HGETALL', KEYS[6])
return { pending, heads, completed, failed, live, usage, states, calls }
