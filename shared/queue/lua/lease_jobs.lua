-- lease_jobs: take up to N ready jobs for a worker, each leased until a provisional deadline
--
-- Jobs are taken in `ready` order (priority, then users in turn) and each is leased with a fresh
-- fencing token. The job hashes are not touched: their keys are only known once the ids are
-- taken, so `start_jobs.lua` starts the jobs in a second call that declares them. A job leased
-- here and never started (the worker died in between) is returned to `ready` by `settle.lua`
-- once the provisional lease expires, without spending an attempt.
--
-- When the pop from `ready` leaves it empty (fewer jobs than asked) and the worker knows other
-- workers listen, it tells them ("<worker id> drained" on the events channel): every job announced
-- before is taken, so the workers waiting their turn to claim do not.
--
-- Two ways in:
--   all types, no limit: ZPOPMIN `ready`; the jobs' `lanes` members are removed by start_jobs,
--     which reads their types (the reply gives each job's score for it);
--   types (exact names or prefixes) or limits: read `lanes` type by type (ZRANGEBYLEX, at most
--     WINDOW members of a type at a time, at most MAX_READS reads), drop the jobs of types or
--     users at their limit (the running jobs counted from `slots`), take the best by score,
--     check them against `ready` (a stale lane member, left by a worker that died between the
--     two calls, is removed), and remove them from both. A job held back stays where it is.
--
-- Input:
--   KEYS[1]    ready ZSET (score priority * 1e13 + turn)
--   KEYS[2]    leases ZSET (member "<id>|<token>", score = lease deadline)
--   KEYS[3]    lanes ZSET (lanes.lua)
--   KEYS[4]    slots HASH (job id -> "<type>|<userId>" of each running job claimed under limits)
--   ARGV[1]    the provisional lease deadline (epoch ms)
--   ARGV[2]    N, the number of fencing tokens that follow: the most jobs taken
--   ARGV[3..2+N]  one token per job wanted ("<hex>.<worker id>", so the lease names its holder)
--   then       P, then P lane prefixes: "<type>|" for one type, "<prefix>" for every type that
--              starts with it ("" for every type); P = 0 for every type
--   then       L, then L pairs: type, its concurrency limit (TYPE_CONCURRENCY)
--   then       the per-user limit (USER_CONCURRENCY), 0 for none
--   then       the events channel, and the worker id to announce a drained `ready` with, or ''
--
-- Output:
--   three entries per job taken, in order: its id (leased as "<id>|<token of its place>"), its
--   score when its `lanes` member is still to be removed (else ''), and '1' when it holds a slot
--   in `slots` (else '0'); then the number of Redis calls this script made
--- @include "queue/lanes"
local WINDOW, MAX_READS = 64, 16
local n_tokens = tonumber(ARGV[2])
local at = 3 + n_tokens
local starts = {}
for i = 1, tonumber(ARGV[at]) do
  starts[i] = ARGV[at + i]
end
at = at + #starts + 1
local type_limits, n_limits = {}, tonumber(ARGV[at])
for i = 1, n_limits do
  type_limits[ARGV[at + 2 * i - 1]] = tonumber(ARGV[at + 2 * i])
end
local user_limit = tonumber(ARGV[at + 2 * n_limits + 1])
local events_channel, announce = ARGV[at + 2 * n_limits + 2], ARGV[at + 2 * n_limits + 3]
local limited = n_limits > 0 or user_limit > 0
local calls = 0

local function call(...)
  calls = calls + 1
  return redis.call(...)
end

local function lease(ids)
  local leases = {}
  for i, id in ipairs(ids) do
    leases[#leases + 1] = ARGV[1]
    leases[#leases + 1] = id .. '|' .. ARGV[2 + i]
  end
  if #leases > 0 then
    call('ZADD', KEYS[2], unpack(leases))
  end
end

local function pop_ready()
  local popped = call('ZPOPMIN', KEYS[1], n_tokens)
  local ids, reply = {}, {}
  for i = 1, #popped, 2 do
    ids[#ids + 1] = popped[i]
    reply[#reply + 1] = popped[i]
    reply[#reply + 1] = popped[i + 1]
    reply[#reply + 1] = '0'
  end
  lease(ids)
  if #ids < n_tokens and announce ~= '' then
    call('PUBLISH', events_channel, announce .. ' drained')
  end
  return reply
end

-- the lane members of one prefix: up to WINDOW of each type under it, best first
local function read_lane(start, candidates, reads)
  local low, high = '[' .. start, '(' .. start .. '~'
  if start == '' then
    low, high = '-', '+'
  end
  while reads < MAX_READS do
    local members = call('ZRANGEBYLEX', KEYS[3], low, high, 'LIMIT', 0, WINDOW)
    reads = reads + 1
    for _, member in ipairs(members) do
      candidates[#candidates + 1] = member
    end
    if #members < WINDOW or string.sub(start, -1) == '|' then -- the end, or one type only
      break
    end
    low = '(' .. parse_lane(members[#members]) .. '|~' -- on to the next type
  end
  return reads
end

local function running_counts()
  local by_type, by_user = {}, {}
  if not limited then
    return by_type, by_user
  end
  local slots = call('HVALS', KEYS[4])
  for _, slot in ipairs(slots) do
    local job_type, user = string.match(slot, '^([^|]*)|(.*)$')
    if job_type then
      by_type[job_type] = (by_type[job_type] or 0) + 1
      by_user[user] = (by_user[user] or 0) + 1
    end
  end
  return by_type, by_user
end

local function best_first(members)
  local jobs, seen = {}, {}
  for _, member in ipairs(members) do
    if not seen[member] then
      seen[member] = true
      local job_type, score, id, user = parse_lane(member)
      if id then
        jobs[#jobs + 1] = { member = member, type = job_type, score = score, id = id, user = user }
      end
    end
  end
  table.sort(jobs, function(a, b)
    if a.score ~= b.score then
      return a.score < b.score
    end
    return a.id < b.id
  end)
  return jobs
end

local function fits(job, by_type, by_user)
  local type_limit = type_limits[job.type]
  return (not type_limit or (by_type[job.type] or 0) < type_limit)
    and (user_limit == 0 or (by_user[job.user] or 0) < user_limit)
end

local function take_lanes()
  local candidates, reads = {}, 0
  if #starts == 0 then
    starts[1] = ''
  end
  for _, start in ipairs(starts) do
    reads = read_lane(start, candidates, reads)
  end
  local by_type, by_user = running_counts()
  local chosen = {}
  for _, job in ipairs(best_first(candidates)) do
    if #chosen == n_tokens then
      break
    end
    if fits(job, by_type, by_user) then
      chosen[#chosen + 1] = job
      by_type[job.type] = (by_type[job.type] or 0) + 1
      by_user[job.user] = (by_user[job.user] or 0) + 1
    end
  end
  if #chosen == 0 then
    return {}
  end
  local ids, members, taken, slots, reply = {}, {}, {}, {}, {}
  for i, job in ipairs(chosen) do
    ids[i] = job.id
    members[i] = job.member
  end
  local scores = call('ZMSCORE', KEYS[1], unpack(ids))
  for i, job in ipairs(chosen) do
    if scores[i] and tonumber(scores[i]) == job.score then
      taken[#taken + 1] = job.id
      reply[#reply + 1] = job.id
      reply[#reply + 1] = ''
      reply[#reply + 1] = limited and '1' or '0'
      slots[#slots + 1] = job.id
      slots[#slots + 1] = job.type .. '|' .. job.user
    end
  end
  call('ZREM', KEYS[3], unpack(members))
  if #taken > 0 then
    call('ZREM', KEYS[1], unpack(taken))
    lease(taken)
    if limited then
      call('HSET', KEYS[4], unpack(slots))
    end
  end
  return reply
end

local reply
if #starts == 0 and not limited then
  reply = pop_ready()
else
  reply = take_lanes()
end
reply[#reply + 1] = calls
return reply
