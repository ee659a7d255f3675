-- ready_band_heads: the oldest ready score of each non-empty priority band
--
-- A library, not run alone: queue_stats.lua and alerts/check_alerts.lua include it by name and
-- call ready_band_heads(ready_key, pending, step). Ready scores are priority * step + readyAtMs:
-- the lowest score is the oldest job of the first non-empty band, but a later band (up to the
-- band of the highest score) may hold an older job, so the first of each of them is read too.
--
-- Redis calls: none when nothing is pending; ZRANGE (first); when more than one is pending,
-- ZRANGE (last) and one ZRANGEBYSCORE per band between the first band and the last.
--
-- Input:
--   ready_band_heads(ready_key, pending, step)
--   ready_key  the ready ZSET
--   pending    its ZCARD
--   step       the priority step of ready scores (1e13), a number
--
-- Output:
--   heads, calls
--   heads      the oldest score (as Redis printed it) of each non-empty band, first band first
--   calls      how many Redis calls it made
local function ready_band_heads(ready_key, pending, step)
  local heads, calls = {}, 0
  if pending == 0 then
    return heads, calls
  end
  local first = redis.call('ZRANGE', ready_key, 0, 0, 'WITHSCORES')
  calls = calls + 1
  heads[1] = first[2]
  if pending == 1 then
    return heads, calls
  end
  local last = redis.call('ZRANGE', ready_key, -1, -1, 'WITHSCORES')
  calls = calls + 1
  local low = math.floor(tonumber(first[2]) / step)
  local high = math.floor(tonumber(last[2]) / step)
  for band = low + 1, high do
    local head = redis.call(
      'ZRANGEBYSCORE', ready_key, band * step, '(' .. string.format('%.0f', (band + 1) * step),
      'WITHSCORES', 'LIMIT', 0, 1)
    calls = calls + 1
    if head[2] then
      heads[#heads + 1] = head[2]
    end
  end
  return heads, calls
end
