-- record_alerts: move alerts to their new state, each only if it is still the state read
--
-- Two checks that overlap read the same state; the first to record a change wins it (and
-- sends its notification), the other finds the state changed and sends nothing.
--
-- Input:
--   KEYS[1]    alerts HASH (condition -> its state, JSON)
--   ARGV[1]    the HASH's TTL in ms, set again whenever something is written
--   ARGV[2..]  per change, three entries: the condition, its state as read ('' for none), its
--              new state ('' to remove it)
--
-- Output:
--   {condition, ... (the changes made: their state was still as read), calls}: `calls` is how
--   many Redis calls this script made
local names, expected, wanted = {}, {}, {}
for i = 2, #ARGV, 3 do
  names[#names + 1] = ARGV[i]
  expected[#expected + 1] = ARGV[i + 1]
  wanted[#wanted + 1] = ARGV[i + 2]
end
if #names == 0 then
  return { 0 }
end

local current = redis.call('HMGET', KEYS[1], unpack(names))
local calls = 1
local applied, writes, removals = {}, {}, {}
for i, name in ipairs(names) do
  if (current[i] or '') == expected[i] then
    applied[#applied + 1] = name
    if wanted[i] == '' then
      removals[#removals + 1] = name
    else
      writes[#writes + 1] = name
      writes[#writes + 1] = wanted[i]
    end
  end
end
if #writes > 0 then
  redis.call('HSET', KEYS[1], unpack(writes))
  calls = calls + 1
end
if #removals > 0 then
  redis.call('HDEL', KEYS[1], unpack(removals))
  calls = calls + 1
end
if #writes > 0 or #removals > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  calls = calls + 1
end
applied[#applied + 1] = calls
return applied
