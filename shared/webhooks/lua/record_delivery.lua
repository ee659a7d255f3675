-- record_delivery: store how a claimed callback try went, and when the next one is due
--
-- Written only while the entry still carries the claim's score (the fence): once the in-flight
-- window has passed and another worker claimed it, this claim's outcome is dropped. Repeating a
-- call that was applied finds the score changed and writes nothing again.
--
-- Input:
--   KEYS[1]    webhooks ZSET (member job id, score = when the next try is due)
--   KEYS[2]    the job HASH
--   ARGV[1]    job id
--   ARGV[2]    the claim's score (the end of its in-flight window, ms)
--   ARGV[3]    the delivery's state, JSON text {"status", "attempts", "lastError"}
--   ARGV[4]    when the next try is due (ms), or '' when there is none (delivered or given up)
--
-- Output:
--   'recorded'; 'stale' when the entry is not this claim's any more (nothing written); 'gone'
--   when the job expired meanwhile (its entry was removed)
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then
  return 'stale'
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 'gone'
end
redis.call('HSET', KEYS[2], 'webhook', ARGV[3])
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
end
return 'recorded'
