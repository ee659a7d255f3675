-- lanes: the `lanes` member of a ready job, and adding jobs to `ready` with their lane members
--
-- A library, not run alone: enqueue_job.lua, settle.lua, release_jobs.lua, retry_jobs.lua,
-- cancel_job.lua, start_jobs.lua and lease_jobs.lua include it by name. Every job in `ready` has
-- one member in `lanes` (all scores 0), "<type>|<score>|<id>|<userId>" with the score written in
-- 15 digits, so that a ZRANGEBYLEX over "<type>|" (or a type prefix) lists that type's ready jobs
-- in `ready` order. Types never contain '|' (shared.queue.models.JOB_TYPE_PATTERN), user ids may:
-- the user id is last.
--
-- Redis calls: make_ready: ZADD ready, ZADD lanes (none for no job); unready: ZSCORE ready, and
-- when the job is there ZREM ready, ZREM lanes.
--
-- Input:
--   ready_score(score)                           a score as text, whole (no exponent)
--   lane_member(job_type, score, id, user_id)   score a number or a numeric string
--   make_ready(ready_key, lanes_key, jobs)      jobs: list of {id=, score=, type=, user=}
--   parse_lane(member)                           -> job_type, score (number), id, user_id
--   unready(ready_key, lanes_key, id, job_type, user_id)   take a job out of `ready` and `lanes`
--
-- Output:
--   lane_member: the member string; make_ready: none
-- a score as Redis is given it: whole, never in exponent form
local function ready_score(score)
  return string.format('%.0f', tonumber(score))
end

local function lane_score(score)
  return string.format('%015.0f', tonumber(score))
end

local function lane_member(job_type, score, id, user_id)
  return job_type .. '|' .. lane_score(score) .. '|' .. id .. '|' .. (user_id or '')
end

local function parse_lane(member)
  local job_type, score, id, user_id = string.match(member, '^([^|]*)|(%d+)|([^|]*)|(.*)$')
  return job_type, tonumber(score), id, user_id
end

local function make_ready(ready_key, lanes_key, jobs)
  if #jobs == 0 then
    return
  end
  local ready, lanes = {}, {}
  for _, job in ipairs(jobs) do
    ready[#ready + 1] = ready_score(job.score)
    ready[#ready + 1] = job.id
    lanes[#lanes + 1] = 0
    lanes[#lanes + 1] = lane_member(job.type, job.score, job.id, job.user)
  end
  redis.call('ZADD', ready_key, unpack(ready))
  redis.call('ZADD', lanes_key, unpack(lanes))
end

local function unready(ready_key, lanes_key, id, job_type, user_id)
  local score = redis.call('ZSCORE', ready_key, id)
  if score then
    redis.call('ZREM', ready_key, id)
    redis.call('ZREM', lanes_key, lane_member(job_type, score, id, user_id))
  end
end
