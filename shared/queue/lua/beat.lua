-- beat: renew a worker's leases and heartbeat, do its housekeeping, report what has fallen due
--
-- One worker beat, one request: it renews the worker's leases, writes its heartbeat, does the
-- housekeeping it was asked for, and reports what has fallen due (expired leases of any worker,
-- delayed jobs whose time has come) and when the next thing falls due. The beat changes no job:
-- the ids it reports are acted on by `settle.lua`, which declares their job keys.
--
-- Input:
--   KEYS[1]    leases ZSET (member "<id>|<token>", score = deadline)
--   KEYS[2]    delayed ZSET (score = due time)
--   KEYS[3]    workers HASH (worker id -> heartbeat JSON)
--   KEYS[4]    done:completed ZSET (trimmed when ARGV[5] > 0)
--   KEYS[5]    done:failed ZSET (trimmed when ARGV[5] > 0)
--   ARGV[1]    now_ms
--   ARGV[2]    worker id
--   ARGV[3]    heartbeat JSON {lastSeenMs, active, concurrency}
--   ARGV[4]    batch size: at most this many expired leases and this many due jobs are reported
--   ARGV[5]    trim done sets of entries finished before this time (epoch ms), or 0
--   ARGV[6]    remove heartbeats last seen before this time (epoch ms), or 0
--   ARGV[7..]  the worker's leases to renew, two entries each: member "<id>|<token>", timeoutMs
--
-- Output:
--   { lost, next_due_ms, expired, due }: `lost` lists the renewed members that no longer exist
--   (the worker must abandon those jobs); `next_due_ms` is the earliest delayed due time or lease
--   deadline still ahead (now_ms when a batch was full), or -1; `expired` lists lease members
--   whose deadline has passed and `due` the delayed job ids whose time has come.
local now_ms = tonumber(ARGV[1])
local batch = tonumber(ARGV[4])

local function renew_held()
  local renew, members = {}, {}
  for i = 7, #ARGV, 2 do
    renew[#renew + 1] = now_ms + tonumber(ARGV[i + 1])
    renew[#renew + 1] = ARGV[i]
    members[#members + 1] = ARGV[i]
  end
  if #members == 0 then
    return {}
  end
  -- XX never re-creates a lease; CH counts the renewed ones. Only when some did not change
  -- (gone, or renewed twice within one millisecond) ask which are gone.
  if redis.call('ZADD', KEYS[1], 'XX', 'CH', unpack(renew)) == #members then
    return {}
  end
  local lost = {}
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(members))
  for i, member in ipairs(members) do
    if not scores[i] then
      lost[#lost + 1] = member
    end
  end
  return lost
end

-- The first `batch` members of a ZSET scored at or before now, and the first score after them.
local function due_members(key)
  local entries = redis.call('ZRANGE', key, 0, batch, 'WITHSCORES')
  local due = {}
  for i = 1, #entries, 2 do
    local score = tonumber(entries[i + 1])
    if score > now_ms or #due == batch then
      return due, (score > now_ms) and score or now_ms
    end
    due[#due + 1] = entries[i]
  end
  return due, nil
end

local function housekeeping()
  local trim_before = tonumber(ARGV[5])
  if trim_before > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[5])
    redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. ARGV[5])
  end
  local stale_before = tonumber(ARGV[6])
  if stale_before > 0 then
    local workers = redis.call('HGETALL', KEYS[3])
    local stale = {}
    for i = 1, #workers, 2 do
      local ok, beat = pcall(cjson.decode, workers[i + 1])
      local seen = ok and type(beat) == 'table' and tonumber(beat['lastSeenMs']) or 0
      if seen < stale_before and workers[i] ~= ARGV[2] then
        stale[#stale + 1] = workers[i]
      end
    end
    if #stale > 0 then
      redis.call('HDEL', KEYS[3], unpack(stale))
    end
  end
end

local lost = renew_held()
local expired, next_lease = due_members(KEYS[1])
local due, next_delayed = due_members(KEYS[2])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
housekeeping()

local next_due = next_lease or next_delayed or -1
if next_lease and next_delayed then
  next_due = math.min(next_lease, next_delayed)
end
return { lost, next_due, expired, due }
