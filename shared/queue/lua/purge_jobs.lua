-- purge_jobs: delete finished jobs of one status that finished before a cutoff
--
-- A listed job is deleted only if it still has that status and finished before the cutoff
-- (it may have been retried since its ids were read); its entries leave done:<status> and the
-- webhooks ZSET (an undelivered callback of a deleted job is given up). A listed id whose job
-- no longer exists (expired) or has another status now (its entry is stale) only leaves
-- done:<status>. A job of that status that finished later is left as it is.
--
-- Input:
--   KEYS[1]    done:<status> ZSET (score finishedAt)
--   KEYS[2]    webhooks ZSET
--   KEYS[3..]  the job HASHes, in the order of ARGV[3..]
--   ARGV[1]    the status: 'completed', 'failed' or 'cancelled'
--   ARGV[2]    cutoff ms: jobs whose finishedAt is below it are deleted
--   ARGV[3..]  the job ids
--
-- Output:
--   {purged, forgotten, remaining}: jobs deleted, entries of expired jobs removed, and the
--   entries of done:<status> still below the cutoff
local cutoff = tonumber(ARGV[2])
local deleted, deleted_ids, entries = {}, {}, {}
local forgotten = 0

for i = 3, #ARGV do
  local key = KEYS[i]
  local job = redis.call('HMGET', key, 'status', 'finishedAt')
  if not job[1] then
    entries[#entries + 1] = ARGV[i]
    forgotten = forgotten + 1
  elseif job[1] ~= ARGV[1] then
    entries[#entries + 1] = ARGV[i]
  elseif (tonumber(job[2]) or 0) < cutoff then
    deleted[#deleted + 1] = key
    deleted_ids[#deleted_ids + 1] = ARGV[i]
    entries[#entries + 1] = ARGV[i]
  end
end

if #deleted > 0 then
  redis.call('DEL', unpack(deleted))
end
if #entries > 0 then
  redis.call('ZREM', KEYS[1], unpack(entries))
end
if #deleted_ids > 0 then
  redis.call('ZREM', KEYS[2], unpack(deleted_ids))
end
local remaining = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. ARGV[2])
return { #deleted, forgotten, remaining }
