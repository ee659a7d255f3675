-- One worker beat, one request: renew the worker's leases, recover expired leases of any
-- worker, move due delayed jobs to ready, write the worker's heartbeat, and report when the
-- next thing falls due, so an idle worker can sleep until then.
--
-- KEYS[1]  leases ZSET (member "<id>|<token>", score = deadline)
-- KEYS[2]  delayed ZSET (score = due time)
-- KEYS[3]  ready ZSET (score priority * 1e13 + readyAtMs)
-- KEYS[4]  workers HASH (worker id -> heartbeat JSON)
-- KEYS[5]  done:completed ZSET (trimmed when ARGV[6] > 0)
-- KEYS[6]  done:failed ZSET (jobs whose last lease expired land here; trimmed too)
-- KEYS[7]  the job key prefix (`...job:`): recovered and promoted ids are only known here; the
--          prefix carries the queue's hash tag, so those keys share KEYS[1]'s slot
-- ARGV[1]  now_ms
-- ARGV[2]  worker id
-- ARGV[3]  heartbeat JSON {lastSeenMs, active, concurrency}
-- ARGV[4]  batch size: at most this many expired leases and this many due jobs per beat
-- ARGV[5]  retention in ms (PEXPIRE of a job failed by an expired lease)
-- ARGV[6]  trim done sets of entries finished before this time (epoch ms), or 0
-- ARGV[7]  remove heartbeats last seen before this time (epoch ms), or 0
-- ARGV[8]  error JSON recorded on a job whose last attempt's lease expired
-- ARGV[9]  the events channel: one PUBLISH "<id> <now_ms>" when jobs became ready
-- ARGV[10..] the worker's leases to renew, two entries each: member "<id>|<token>", timeoutMs
--
-- Returns { lost, next_due_ms, ready_count_moved, failed_count }: `lost` lists the renewed
-- members that no longer exist (the worker must abandon those jobs); `next_due_ms` is the
-- earliest delayed due time or lease deadline still ahead (now_ms when a batch was full), or -1.
local now_ms = tonumber(ARGV[1])
local batch = tonumber(ARGV[4])
local prefix = KEYS[7]

local function renew_held()
  local renew, members = {}, {}
  for i = 10, #ARGV, 2 do
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

-- The first `batch` entries of a ZSET scored at or before now, and the first score after them.
local function due_entries(key)
  local entries = redis.call('ZRANGE', key, 0, batch, 'WITHSCORES')
  local due = {}
  for i = 1, #entries, 2 do
    local score = tonumber(entries[i + 1])
    if score > now_ms or #due == batch * 2 then
      return due, (score > now_ms) and score or now_ms
    end
    due[#due + 1] = entries[i]
    due[#due + 1] = score
  end
  return due, nil
end

local moved, ready_ids, failed_count = {}, {}, 0

local function recover_expired(expired)
  local members, failed = {}, {}
  for i = 1, #expired, 2 do
    local member = expired[i]
    local id = string.match(member, '^(.*)|') or ''
    local token = string.sub(member, #id + 2)
    local job_key = prefix .. id
    local job = { false, false }
    if id ~= '' then
      job = redis.call('HMGET', job_key, 'status', 'token', 'attempts', 'maxAttempts', 'priority')
    end
    members[#members + 1] = member
    if job[1] == 'processing' and job[2] == token then
      if (tonumber(job[3]) or 0) >= (tonumber(job[4]) or 1) then
        redis.call('HSET', job_key, 'status', 'failed', 'error', ARGV[8], 'finishedAt', ARGV[1],
          'token', '')
        redis.call('PEXPIRE', job_key, ARGV[5])
        failed[#failed + 1] = now_ms
        failed[#failed + 1] = id
        failed_count = failed_count + 1
      else
        redis.call('HSET', job_key, 'status', 'pending', 'token', '')
        moved[#moved + 1] = (tonumber(job[5]) or 0) * 1e13 + now_ms
        moved[#moved + 1] = id
        ready_ids[#ready_ids + 1] = id
      end
    end
  end
  if #members > 0 then
    redis.call('ZREM', KEYS[1], unpack(members))
  end
  if #failed > 0 then
    redis.call('ZADD', KEYS[6], unpack(failed))
  end
end

local function promote_due(due)
  local ids = {}
  for i = 1, #due, 2 do
    local id = due[i]
    local job_key = prefix .. id
    ids[#ids + 1] = id
    local job = redis.call('HMGET', job_key, 'status', 'priority')
    if job[1] == 'delayed' then
      redis.call('HSET', job_key, 'status', 'pending')
      moved[#moved + 1] = (tonumber(job[2]) or 0) * 1e13 + due[i + 1]
      moved[#moved + 1] = id
      ready_ids[#ready_ids + 1] = id
    end
  end
  if #ids > 0 then
    redis.call('ZREM', KEYS[2], unpack(ids))
  end
end

local function housekeeping()
  local trim_before = tonumber(ARGV[6])
  if trim_before > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. ARGV[6])
    redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', '(' .. ARGV[6])
  end
  local stale_before = tonumber(ARGV[7])
  if stale_before > 0 then
    local workers = redis.call('HGETALL', KEYS[4])
    local stale = {}
    for i = 1, #workers, 2 do
      local ok, beat = pcall(cjson.decode, workers[i + 1])
      local seen = ok and type(beat) == 'table' and tonumber(beat['lastSeenMs']) or 0
      if seen < stale_before and workers[i] ~= ARGV[2] then
        stale[#stale + 1] = workers[i]
      end
    end
    if #stale > 0 then
      redis.call('HDEL', KEYS[4], unpack(stale))
    end
  end
end

local lost = renew_held()
local expired, next_lease = due_entries(KEYS[1])
recover_expired(expired)
local due, next_delayed = due_entries(KEYS[2])
promote_due(due)
if #moved > 0 then
  redis.call('ZADD', KEYS[3], unpack(moved))
  redis.call('PUBLISH', ARGV[9], ready_ids[1] .. ' ' .. ARGV[1])
end
redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
housekeeping()

local next_due = next_lease or next_delayed or -1
if next_lease and next_delayed then
  next_due = math.min(next_lease, next_delayed)
end
return { lost, next_due, #ready_ids, failed_count }
