-- claim_delivery: take a job's callback delivery if its try is due, for one in-flight window
--
-- The entry's score moves to the end of the window: no other worker takes it meanwhile, and if
-- this one dies mid-delivery the entry is due again afterwards (a scan finds it). The new score
-- is also the claim's fencing value: record_delivery writes only while the entry still has it.
-- A job that expired (retention) or has no callbackUrl loses its entry.
--
-- Input:
--   KEYS[1]    webhooks ZSET (member job id, score = when the next try is due)
--   KEYS[2]    the job HASH
--   ARGV[1]    job id
--   ARGV[2]    now_ms
--   ARGV[3]    end of the in-flight window, ms (the entry's new score)
--
-- Output:
--   {'claimed', <job fields>}  HGETALL-shaped fields of the job
--   {'not_due'}                no entry, or its try is not due (another worker may have it)
--   {'gone'}                   the job expired or has no callbackUrl: its entry was removed
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then
  return {'not_due'}
end
local fields = redis.call('HGETALL', KEYS[2])
local callback = false
for i = 1, #fields, 2 do
  if fields[i] == 'callbackUrl' and fields[i + 1] ~= '' then
    callback = true
  end
end
if not callback then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return {'gone'}
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return {'claimed', fields}
