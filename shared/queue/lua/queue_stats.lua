-- queue_stats: queue counts and health in one call; forgets workers not seen for a while
--
-- A worker's `active` is what the leases say: its live (unexpired) leases now, counted from
-- the lease members, whose token ends with the holder's id ("<id>|<hex>.<worker id>").
--
-- Input:
--   KEYS[1]    ready ZSET (score priority * step + readyAtMs)
--   KEYS[2]    delayed ZSET
--   KEYS[3]    leases ZSET (member "<id>|<hex>.<worker id>", score = deadline)
--   KEYS[4]    done:completed ZSET (score finishedAt)
--   KEYS[5]    done:failed ZSET
--   KEYS[6]    done:cancelled ZSET
--   KEYS[7]    workers HASH (id -> JSON {lastSeenMs, active, concurrency})
--   KEYS[8]    today's usage STRING (billed commands counted by the product, shared.usage)
--   KEYS[9]    slots HASH (job id -> "<type>|<userId>" of each job running under the limits)
--   ARGV[1]    retention cutoff ms: finished jobs at or after it still exist
--   ARGV[2]    one hour ago, ms
--   ARGV[3]    stale cutoff ms: workers last seen before it are removed from KEYS[7]
--   ARGV[4]    the priority step of ready scores (1e13)
--   ARGV[5]    now_ms: leases with a later deadline are live
--
-- Output:
--   {pending, delayed, processing, completed, failed, cancelled, completedLastHour,
--    failedLastHour, {oldest ready score of each non-empty priority band...},
--    {worker id, worker JSON, ...} (live workers only),
--    {worker id, live leases, ...} (workers holding a live lease),
--    {"<type>|<userId>" of each running job that holds a slot},
--    today's usage count (0 when none), the number of Redis calls this script made}
-- One read of the leases gives both their count and each worker's live ones.
--- @include "queue/ready_band_heads"
local leases = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
local now_ms = tonumber(ARGV[5])
local live_leases = {}
for i = 1, #leases, 2 do
  local holder = string.match(leases[i], '^[^|]*|%x+%.(.+)$')
  if holder and tonumber(leases[i + 1]) > now_ms then
    live_leases[holder] = (live_leases[holder] or 0) + 1
  end
end

local pending = redis.call('ZCARD', KEYS[1])
local counts = {
  pending,
  redis.call('ZCARD', KEYS[2]),
  #leases / 2,
  redis.call('ZCOUNT', KEYS[4], ARGV[1], '+inf'),
  redis.call('ZCOUNT', KEYS[5], ARGV[1], '+inf'),
  redis.call('ZCOUNT', KEYS[6], ARGV[1], '+inf'),
  redis.call('ZCOUNT', KEYS[4], ARGV[2], '+inf'),
  redis.call('ZCOUNT', KEYS[5], ARGV[2], '+inf'),
}

local oldest, band_calls = ready_band_heads(KEYS[1], pending, tonumber(ARGV[4]))
counts[#counts + 1] = oldest

local live, stale = {}, {}
local workers = redis.call('HGETALL', KEYS[7])
local stale_cutoff = tonumber(ARGV[3])
for i = 1, #workers, 2 do
  local ok, info = pcall(cjson.decode, workers[i + 1])
  local seen = ok and type(info) == 'table' and tonumber(info['lastSeenMs'])
  if seen and seen >= stale_cutoff then
    live[#live + 1] = workers[i]
    live[#live + 1] = workers[i + 1]
  else
    stale[#stale + 1] = workers[i]
  end
end
local stale_calls = 0
if #stale > 0 then
  redis.call('HDEL', KEYS[7], unpack(stale))
  stale_calls = 1
end
counts[#counts + 1] = live

local held = {}
for holder, count in pairs(live_leases) do
  held[#held + 1] = holder
  held[#held + 1] = count
end
counts[#counts + 1] = held
counts[#counts + 1] = redis.call('HVALS', KEYS[9])
counts[#counts + 1] = tonumber(redis.call('GET', KEYS[8]) or '0') or 0
-- ZRANGE leases, 2 ZCARD, 5 ZCOUNT, HGETALL, HVALS and GET, plus the bands and the HDEL.
counts[#counts + 1] = 11 + band_calls + stale_calls
return counts
