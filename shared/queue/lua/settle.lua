-- settle: act on what a beat found due: take back expired leases, move due delayed jobs to ready
--
-- Every job key is declared. Each entry is checked again first (another worker may have settled
-- it, or its owner renewed it, since the beat looked), so repeating a call, or several workers
-- settling the same entries, changes nothing more.
--
-- An expired lease of a running job returns it to `ready` with the attempt counted, or fails it
-- (error ARGV[3], kind lease_expired) when its attempts are used up. An expired lease of a job
-- that was leased but never started (still pending) returns it to `ready`: no attempt was spent.
-- An expired "<id>|cancel" lease (the owner cancelled the running job and its worker never
-- confirmed) ends the job cancelled. A lease whose job is in any other state is just removed.
-- Every job that changes is announced on its channel, and every expired lease frees its job's
-- slot. A job made ready joins `ready` and `lanes` (lanes.lua) with its turn now.
--
-- Input:
--   KEYS[1]       leases ZSET (member "<id>|<token>", score = deadline)
--   KEYS[2]       delayed ZSET (score = due time = the job's runAt)
--   KEYS[3]       ready ZSET (score priority * 1e13 + readyAtMs)
--   KEYS[4]       done:failed ZSET (score finishedAt)
--   KEYS[5]       done:cancelled ZSET (score finishedAt)
--   KEYS[6]       webhooks ZSET (score = when a callback's next try is due)
--   KEYS[7]       lanes ZSET (lanes.lua)
--   KEYS[8]       slots HASH (job id -> "<type>|<userId>")
--   KEYS[9..]     the job HASH of each expired lease member, then of each due delayed id, in the
--                 order of the ARGV entries
--   ARGV[1]       now_ms
--   ARGV[2]       retention in ms (PEXPIRE of a job failed or cancelled here)
--   ARGV[3]       error JSON recorded on a job whose last attempt's lease expired
--   ARGV[4]       the events channel: one PUBLISH "<id> <now_ms>" when jobs became ready
--   ARGV[5]       the job channel prefix
--   ARGV[6]       E, the number of expired lease members that follow
--   ARGV[7..6+E]  the expired lease members "<id>|<token>"
--   ARGV[7+E..]   the due delayed job ids
--
-- Output:
--   { ready_count, ended_count }: jobs moved to `ready`, jobs failed or cancelled
--- @include "queue/end_job"
--- @include "queue/attempt_history"
--- @include "queue/lanes"
local now_ms = tonumber(ARGV[1])
local n_expired = tonumber(ARGV[6])
local ready, ready_ids = {}, {}
local freed = nil -- the id of a job whose slot an expired lease freed
local ended = 0

local function ending(callback)
  return { now_ms = ARGV[1], retention_ms = ARGV[2], webhooks_key = KEYS[6],
    events_channel = ARGV[4], job_channel = ARGV[5], callback = callback, announce = true }
end

local function to_ready(id, priority, ready_at_ms, job_type, user_id)
  ready[#ready + 1] = { id = id, score = (tonumber(priority) or 0) * 1e13 + ready_at_ms,
    type = job_type or '', user = user_id or '' }
  ready_ids[#ready_ids + 1] = id
end

local function take_back(job_key, member)
  local id = string.match(member, '^(.*)|') or ''
  local token = string.sub(member, #id + 2)
  local job = redis.call('HMGET', job_key, 'status', 'token', 'attempts', 'maxAttempts',
    'priority', 'cancelRequested', 'callbackUrl', 'history', 'type', 'userId')
  local callback = (job[7] or '') ~= ''
  local function history()
    return with_attempt(job[8], job[3], 'lease_expired', ARGV[1], ARGV[3])
  end
  if token == 'cancel' then
    if job[1] == 'processing' and job[6] == '1' then
      end_job(job_key, id, 'cancelled', KEYS[5], {}, ending(callback))
      ended = ended + 1
    end
  elseif job[1] == 'pending' then
    to_ready(id, job[5], now_ms, job[9], job[10])
  elseif job[1] ~= 'processing' or job[2] ~= token then
    return
  elseif (tonumber(job[3]) or 0) >= (tonumber(job[4]) or 1) then
    local fields = { 'error', ARGV[3], 'token', '', 'history', history() }
    end_job(job_key, id, 'failed', KEYS[4], fields, ending(callback))
    ended = ended + 1
  else
    redis.call('HSET', job_key, 'status', 'pending', 'token', '', 'updatedAt', ARGV[1], 'history',
      history())
    redis.call('PUBLISH', ARGV[5] .. id, ARGV[1] .. ' pending')
    to_ready(id, job[5], now_ms, job[9], job[10])
  end
end

local function recover_expired()
  local members = {}
  for i = 1, n_expired do
    members[i] = ARGV[6 + i]
  end
  if #members == 0 then
    return
  end
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(members))
  local expired, ids = {}, {}
  for i, member in ipairs(members) do
    if scores[i] and tonumber(scores[i]) <= now_ms then
      expired[#expired + 1] = member
      ids[#ids + 1] = string.match(member, '^(.*)|')
      take_back(KEYS[8 + i], member)
    end
  end
  if #expired > 0 then
    redis.call('ZREM', KEYS[1], unpack(expired))
    if redis.call('HDEL', KEYS[8], unpack(ids)) > 0 then
      freed = ids[1]
    end
  end
end

-- A job is delayed exactly while it is in `delayed`, scored by its runAt.
local function promote_due()
  local settled = {}
  for i = 7 + n_expired, #ARGV do
    local id = ARGV[i]
    local job = redis.call('HMGET', KEYS[i + 2], 'status', 'priority', 'runAt', 'type', 'userId')
    local run_at = tonumber(job[3]) or now_ms
    if job[1] ~= 'delayed' then
      settled[#settled + 1] = id
    elseif run_at <= now_ms then
      redis.call('HSET', KEYS[i + 2], 'status', 'pending', 'updatedAt', ARGV[1])
      redis.call('PUBLISH', ARGV[5] .. id, ARGV[1] .. ' pending')
      to_ready(id, job[2], run_at, job[4], job[5])
      settled[#settled + 1] = id
    end
  end
  if #settled > 0 then
    redis.call('ZREM', KEYS[2], unpack(settled))
  end
end

recover_expired()
promote_due()
if #ready > 0 then
  make_ready(KEYS[3], KEYS[7], ready)
end
if #ready > 0 or freed then -- jobs to run, or slots free for jobs held back
  redis.call('PUBLISH', ARGV[4], (ready_ids[1] or freed) .. ' ' .. ARGV[1])
end
return { #ready_ids, ended }
