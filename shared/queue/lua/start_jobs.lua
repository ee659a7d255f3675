-- start_jobs: start the jobs that `lease_jobs.lua` leased, if still leased and still pending
--
-- For each job still leased by the caller's token and still pending: mark it processing (one
-- more attempt, the token, startedAt, no progress) and move its lease deadline to now +
-- timeoutMs; its watchers hear of the change on its channel. A job that is no longer pending
-- (cancelled meanwhile, or gone) loses its lease and its slot and is not started; a job whose
-- lease is gone (it expired and was returned to `ready`) is left alone. The `lanes` members of
-- the jobs that lease_jobs popped from `ready` are removed here, where their types are known.
--
-- Input:
--   KEYS[1]    leases ZSET (member "<id>|<token>", score = lease deadline in epoch ms)
--   KEYS[2]    lanes ZSET (lanes.lua)
--   KEYS[3]    slots HASH (job id -> "<type>|<userId>")
--   KEYS[4..]  the job HASH of each leased job, in the order of the ARGV entries
--   ARGV[1]    now_ms, the caller's clock (startedAt, updatedAt)
--   ARGV[2]    the job channel prefix: a started job's change is PUBLISHed on prefix .. id
--   ARGV[3..]  per job, four entries: its id, its fencing token, its score in `ready` when its
--              `lanes` member is still to be removed (else ''), and '1' when it holds a slot
--
-- Output:
--   { id, token, type, userId, data, attempts, maxAttempts, timeoutMs, priority, callbackUrl,
--   id, ... }: 10 fields per started job (attempts counts this one; callbackUrl '' if none).
--   Repeating a call that was applied returns the same jobs again without counting another
--   attempt.
--- @include "queue/lanes"
local now_ms = tonumber(ARGV[1])
local FIELDS = { 'status', 'token', 'type', 'userId', 'data', 'attempts', 'maxAttempts',
  'timeoutMs', 'priority', 'callbackUrl' }

local wanted, deadlines, dropped, twins, freed = {}, {}, {}, {}, {}
for i = 4, #KEYS do
  local at = 4 * (i - 4) + 3
  local id, token, score, slot = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
  local job = redis.call('HMGET', KEYS[i], unpack(FIELDS))
  if score ~= '' then
    twins[#twins + 1] = lane_member(job[3] or '', score, id, job[4] or '')
  end
  local timeout_ms = tonumber(job[8])
  local repeated = job[1] == 'processing' and job[2] == token
  local member = id .. '|' .. token
  if timeout_ms and (job[1] == 'pending' or repeated) then
    wanted[#wanted + 1] = { key = KEYS[i], id = id, token = token, job = job, member = member }
    deadlines[#deadlines + 1] = now_ms + timeout_ms
    deadlines[#deadlines + 1] = member
  else
    dropped[#dropped + 1] = member
    if slot == '1' and job[1] ~= 'processing' then -- running: another claim's slot now
      freed[#freed + 1] = id
    end
  end
end
if #twins > 0 then
  redis.call('ZREM', KEYS[2], unpack(twins))
end
if #dropped > 0 then
  redis.call('ZREM', KEYS[1], unpack(dropped))
end
if #freed > 0 then
  redis.call('HDEL', KEYS[3], unpack(freed))
end

-- XX never re-creates a lease that expired and was taken back; CH counts the moved deadlines.
-- Only when some did not move (gone, or the same deadline again) ask which leases exist.
local held = {}
if #wanted > 0 and redis.call('ZADD', KEYS[1], 'XX', 'CH', unpack(deadlines)) ~= #wanted then
  local members = {}
  for i, start in ipairs(wanted) do
    members[i] = start.member
  end
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(members))
  for i = 1, #wanted do
    held[i] = scores[i] ~= false
  end
end

local reply = {}
for i, start in ipairs(wanted) do
  if held[i] ~= false then
    local job = start.job
    local attempts = tonumber(job[6]) or 0
    if job[1] == 'pending' then
      attempts = attempts + 1
      redis.call('HSET', start.key, 'status', 'processing', 'attempts', attempts,
        'startedAt', ARGV[1], 'updatedAt', ARGV[1], 'token', start.token, 'progress', '')
      redis.call('PUBLISH', ARGV[2] .. start.id, ARGV[1] .. ' processing')
    end
    local fields = { start.id, start.token, job[3] or '', job[4] or '', job[5] or '', attempts,
      job[7] or '1', job[8], job[9] or '0', job[10] or '' }
    for _, field in ipairs(fields) do
      reply[#reply + 1] = field
    end
  end
end
return reply
