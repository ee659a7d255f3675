-- enqueue_job: create one job or a batch atomically: idempotency, cache, rate limits, the jobs
--
-- Rate limits are charged for the new jobs only, all or nothing.
-- Each job is answered, in order, by the first that applies:
--   its idempotency key names a job: that job ('replayed'; 'reused', for a different request,
--     refuses the whole batch);
--   its cacheKey names a job (the job id is derived from the cache's scope and key): a job still
--     to run or running ('attached'), a completed job that finished at most the job's cache TTL
--     ago ('hit'), and its own idempotent retry ('replayed'); a failed, cancelled or older
--     completed job is replaced by the new one (removed from its done:<status> ZSET, its callback
--     delivery dropped); a cacheKey of an earlier job in the batch: that job ('attached');
--   else it is new ('created').
-- Only new jobs are charged: cost = their number, every policy all or nothing. A denial writes
-- nothing; with no new job nothing is consumed (the peek arguments give the headers' numbers).
-- New jobs join `delayed` (scored by runAt), or `ready` and `lanes` (lanes.lua) in their user's
-- turn: within a priority band, a user's first waiting job takes the turn of the band's first job
-- (now when the band is empty) and each next one the turn after their previous one, so claims
-- take users in turn (`rounds` keeps each user's last turn per band; an enqueue that finds a
-- user's turn stale trims the band's stale entries). The workers hear one "<id> <readyAtMs> <n>"
-- per set that got n jobs (the earliest due), however many jobs the batch has; for `ready`,
-- "<id>|<type> <readyAtMs> <n>" when all its new jobs are of one type.
--
-- Redis calls: HGETALL per job with an idempotency key, and per job with a cacheKey not already
-- created by an earlier job of the batch; MGET and SET ... PX per identifier (apply_rate_limits); per new job
-- HSET (+ DEL, ZREM done, ZREM webhooks when it replaces a job); ZADD and PUBLISH per set (+ ZADD
-- lanes for ready jobs); per (band, user) with ready jobs ZRANGEBYSCORE (the band's first) and
-- ZADD rounds when the band is empty, else ZINCRBY rounds, + ZADD and ZREMRANGEBYSCORE rounds
-- when the user had no turn waiting.
--
-- Input:
--   KEYS[1]    ready ZSET (score priority * 1e13 + turn)
--   KEYS[2]    delayed ZSET (score runAt)
--   KEYS[3]    lanes ZSET (lanes.lua)
--   KEYS[4]    rounds ZSET ("<priority>|<userId>" -> the score of that user's last turn)
--   KEYS[5..]  the job HASHes the jobs are created in and the ones their idempotency keys name,
--              each once (the jobs' headers give their indexes)
--   KEYS[ARGV[7]..ARGV[7]+3]  done:completed, done:failed, done:cancelled and webhooks ZSETs,
--              when a job has a cacheKey (ARGV[7] > 0)
--   KEYS[..]   the rate-limit keys, last: ARGV[2] of them
--   ARGV[1]    number of jobs
--   ARGV[2]    number of rate-limit keys (the last ARGV[2] entries of KEYS)
--   ARGV[3]    number of rate-limit arguments that consume (their cost is replaced by the number
--              of new jobs)
--   ARGV[4]    number of rate-limit arguments that only read (the last ARGV[4] entries of ARGV;
--              used for the headers when no job is new)
--   ARGV[5]    now_ms, the caller's clock (epoch ms)
--   ARGV[6]    events channel
--   ARGV[7]    index in KEYS of done:completed, or 0 when no job has a cacheKey
--   ARGV[8..]  per job, 12 values then its HASH fields:
--              id; its runAt when delayed, else its priority; 'd' (delayed) or 'r' (ready);
--              readyAtMs; KEYS index of its HASH; KEYS index of the HASH its idempotency key
--              names, or 0; its fingerprint, or '' without an idempotency key; its idempotency
--              key or ''; its owner (userId) or ''; its cache TTL in ms, or '' without a
--              cacheKey; its type; n, the number of HASH field and value arguments that follow
--              (field, value, field, value, ...)
--   ARGV[..]   the rate-limit arguments, last: ARGV[3] that consume, then ARGV[4] that peek
--
-- Output:
--   one of
--   {'answered', answers, rl_reply[, turn_calls]}
--              answers[i], in the order of the jobs: {'created'}, {'replayed', <HGETALL>},
--              {'hit', <HGETALL>}, {'attached', <HGETALL>}, or {'attached', j} (the new job j of
--              this batch); rl_reply charged (or, when no job is new, peeked); turn_calls
--              the Redis calls the new jobs' turns took (when any job is new)
--   {'reused', i}
--              job i's idempotency key names a job of another request: nothing written
--   {'denied', rl_reply, n}
--              a rate limit denies the n new jobs: nothing written
--- @include "ratelimit/apply_rate_limits"
--- @include "queue/lanes"
local n_jobs = tonumber(ARGV[1])
local n_rl_keys = tonumber(ARGV[2])
local n_consume_args = tonumber(ARGV[3])
local n_peek_args = tonumber(ARGV[4])
local now_ms = tonumber(ARGV[5])
local done_at = tonumber(ARGV[7])
local LIVE = { pending = true, delayed = true, processing = true }
local DONE_OFFSETS = { completed = 0, failed = 1, cancelled = 2 }
local JOB_HEADER = 12
local STEP = 1e13

local function slice(list, first, count)
  local part = {}
  for i = first, first + count - 1 do
    part[#part + 1] = list[i]
  end
  return part
end

local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then
      return fields[i + 1]
    end
  end
  return nil
end

local function read_jobs()
  local jobs, at = {}, 8
  for i = 1, n_jobs do
    jobs[i] = {
      id = ARGV[at], score = ARGV[at + 1], delayed = ARGV[at + 2] == 'd',
      ready_at = ARGV[at + 3], target = tonumber(ARGV[at + 4]),
      probe = tonumber(ARGV[at + 5]), fingerprint = ARGV[at + 6], key = ARGV[at + 7],
      owner = ARGV[at + 8], cache_ttl = ARGV[at + 9], type = ARGV[at + 10],
      n_fields = tonumber(ARGV[at + 11]),
      first_field = at + JOB_HEADER,
    }
    at = at + JOB_HEADER + jobs[i].n_fields
  end
  return jobs
end

-- the answer of the job an idempotency key names, nil when there is none
local function replay(existing, job)
  if #existing == 0 then
    return nil
  end
  local hash = field(existing, 'requestHash')
  if hash and hash ~= job.fingerprint then
    return { 'reused' }
  end
  return { 'replayed', existing }
end

-- the answer of the job a cacheKey names, nil when the new job is to replace it (or none exists)
local function cached(existing, job)
  if #existing == 0 then
    return nil
  end
  if job.key ~= '' and field(existing, 'idempotencyKey') == job.key
      and (field(existing, 'userId') or '') == job.owner then
    return replay(existing, job)
  end
  local status = field(existing, 'status')
  if LIVE[status] then
    return { 'attached', existing }
  end
  local finished_at = tonumber(field(existing, 'finishedAt') or '') or 0
  if status == 'completed' and finished_at + tonumber(job.cache_ttl) >= now_ms then
    return { 'hit', existing }
  end
  job.replaces = { status = status, callback = (field(existing, 'callbackUrl') or '') ~= '' }
  return nil
end

local function answer(job, planned)
  if job.probe > 0 then
    local found = replay(redis.call('HGETALL', KEYS[job.probe]), job)
    if found then
      return found
    end
  end
  if job.cache_ttl == '' then
    return nil
  end
  if planned[job.target] then
    return { 'attached', planned[job.target] }
  end
  return cached(redis.call('HGETALL', KEYS[job.target]), job)
end

local function replace(job)
  redis.call('DEL', KEYS[job.target])
  local offset = DONE_OFFSETS[job.replaces.status]
  if offset then
    redis.call('ZREM', KEYS[done_at + offset], job.id)
  end
  if job.replaces.callback then
    redis.call('ZREM', KEYS[done_at + 3], job.id)
  end
end

local turn_calls = 0

-- the score of the first of `count` consecutive turns of `user` in priority band `band`
local function take_turns(band, user, count, ready_at)
  local function call(...)
    turn_calls = turn_calls + 1
    return redis.call(...)
  end
  local low = band * STEP
  local member = band .. '|' .. user
  local high = '(' .. ready_score(low + STEP)
  local head = call('ZRANGEBYSCORE', KEYS[1], low, high, 'WITHSCORES', 'LIMIT', 0, 1)
  local first = tonumber(head[2])
  if not first then -- nobody waits in the band: the turns start now
    first = low + tonumber(ready_at)
    call('ZADD', KEYS[4], ready_score(first + count - 1), member)
    return first
  end
  local last = tonumber(call('ZINCRBY', KEYS[4], count, member))
  if last - count + 1 >= first then
    return last - count + 1
  end
  -- no turn of the user waits (or it is stale): they join at the band's first turn, and the
  -- stale turns of the band go
  call('ZADD', KEYS[4], ready_score(first + count - 1), member)
  call('ZREMRANGEBYSCORE', KEYS[4], low, '(' .. ready_score(first))
  return first
end

-- give the new ready jobs their turns, in order, one (band, user) at a time
local function ready_jobs(created)
  local groups, order = {}, {}
  for _, job in ipairs(created) do
    local group = job.score .. '|' .. job.owner
    if not groups[group] then
      groups[group] = {}
      order[#order + 1] = group
    end
    table.insert(groups[group], job)
  end
  local ready = {}
  for _, group in ipairs(order) do
    local members = groups[group]
    local first = take_turns(tonumber(members[1].score), members[1].owner, #members,
      members[1].ready_at)
    for i, job in ipairs(members) do
      ready[#ready + 1] = { id = job.id, score = first + i - 1, type = job.type, user = job.owner }
    end
  end
  return ready
end

-- "<id> <readyAtMs> <n>" of the earliest of the n jobs; "<id>|<type> <readyAtMs> <n>" when
-- `typed` and all the jobs are of one type (workers started with --types let other types'
-- wake-ups pass); n = 1 lets a worker take that one job by name (take_job.lua)
local function publish_first(jobs, typed)
  local first, one_type = nil, typed
  for _, job in ipairs(jobs) do
    if not first or tonumber(job.ready_at) < tonumber(first.ready_at) then
      first = job
    end
    one_type = one_type and job.type == jobs[1].type
  end
  if first then
    local name = one_type and (first.id .. '|' .. first.type) or first.id
    redis.call('PUBLISH', ARGV[6], name .. ' ' .. first.ready_at .. ' ' .. #jobs)
  end
end

local function create(jobs, answers)
  local ready, delayed = {}, {}
  for i, job in ipairs(jobs) do
    if answers[i][1] == 'created' then
      if job.replaces then
        replace(job)
      end
      redis.call('HSET', KEYS[job.target],
        unpack(ARGV, job.first_field, job.first_field + job.n_fields - 1))
      table.insert(job.delayed and delayed or ready, job)
    end
  end
  if #ready > 0 then
    make_ready(KEYS[1], KEYS[3], ready_jobs(ready))
    publish_first(ready, true)
  end
  if #delayed > 0 then
    local members = {}
    for _, job in ipairs(delayed) do
      members[#members + 1] = job.score
      members[#members + 1] = job.id
    end
    redis.call('ZADD', KEYS[2], unpack(members))
    publish_first(delayed, false)
  end
end

local jobs = read_jobs()
local answers, planned, n_new = {}, {}, 0
for i, job in ipairs(jobs) do
  local found = answer(job, planned)
  if found and found[1] == 'reused' then
    return { 'reused', i }
  end
  if not found then
    n_new = n_new + 1
    planned[job.target] = i
    found = { 'created' }
  end
  answers[i] = found
end

local rl_keys = slice(KEYS, #KEYS - n_rl_keys + 1, n_rl_keys)
local peek_from = #ARGV - n_peek_args + 1
local consume_args = slice(ARGV, peek_from - n_consume_args, n_consume_args)
if n_new == 0 then
  local peek_args = slice(ARGV, peek_from, n_peek_args)
  if n_peek_args == 0 then -- read at cost 0: no write
    peek_args = consume_args
    peek_args[1] = 0
  end
  local _, peek_reply = apply_rate_limits(rl_keys, peek_args, now_ms)
  return { 'answered', answers, peek_reply }
end
consume_args[1] = n_new
local allowed, rl_reply = apply_rate_limits(rl_keys, consume_args, now_ms)
if not allowed then
  return { 'denied', rl_reply, n_new }
end
create(jobs, answers)
return { 'answered', answers, rl_reply, turn_calls }
