-- report_progress: record a running job's progress, if the caller still holds its lease
--
-- Input:
--   KEYS[1]    leases ZSET (member "<id>|<token>")
--   KEYS[2]    the job HASH
--   ARGV[1]    the lease member "<id>|<token>"
--   ARGV[2]    progress, JSON text {"percent", "message"}
--   ARGV[3]    now_ms (becomes updatedAt)
--   ARGV[4]    the job's channel: its watchers hear "<now_ms>"
--
-- Output:
--   1 when written, 0 when the lease is not held (nothing written; a cancel request also
--   takes the lease away)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[2], 'progress', ARGV[2], 'updatedAt', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[3] .. ' processing')
return 1
