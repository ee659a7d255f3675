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
--    {worker id, live leases, ...} (workers holding a live lease)}
-- One read of the leases gives both their count and each worker's live ones.
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

-- The lowest score is the oldest job of the first non-empty priority band; later bands (up
-- to the band of the highest score) may hold older jobs, so take the first of each of them.
local oldest = {}
if pending > 0 then
  local step = tonumber(ARGV[4])
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  oldest[1] = first[2]
  if pending > 1 then
    local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
    local low = math.floor(tonumber(first[2]) / step)
    local high = math.floor(tonumber(last[2]) / step)
    for band = low + 1, high do
      local head = redis.call(
        'ZRANGEBYSCORE', KEYS[1], band * step, '(' .. string.format('%.0f', (band + 1) * step),
        'WITHSCORES', 'LIMIT', 0, 1)
      if head[2] then
        oldest[#oldest + 1] = head[2]
      end
    end
  end
end
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
if #stale > 0 then
  redis.call('HDEL', KEYS[7], unpack(stale))
end
counts[#counts + 1] = live

local held = {}
for holder, count in pairs(live_leases) do
  held[#held + 1] = holder
  held[#held + 1] = count
end
counts[#counts + 1] = held
return counts
