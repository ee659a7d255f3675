-- Claim up to N ready jobs: pop them from `ready`, mark them processing (one more attempt, a new
-- fencing token) and lease them until now + timeoutMs.
--
-- KEYS[1]  ready ZSET (score priority * 1e13 + readyAtMs; ZPOPMIN takes the next job)
-- KEYS[2]  leases ZSET (member "<id>|<token>", score = lease deadline in epoch ms)
-- KEYS[3]  the job key prefix (`...job:`). The popped ids are unknown before the script runs,
--          so their keys cannot be listed; the prefix carries the queue's hash tag, so every
--          job key built from it lives in the same slot as KEYS[1] and KEYS[2].
-- ARGV[1]  now_ms, the caller's clock
-- ARGV[2..] one fencing token per job wanted: the number of tokens is the most jobs claimed
--
-- Returns { popped, id, token, type, userId, data, attempts, maxAttempts, timeoutMs, priority,
--           id, token, ... }: `popped` is how many ids left `ready` (so the caller can tell a
-- drained queue from a full batch), then 9 fields per claimed job (attempts counts this one).
-- A popped id whose job is gone or is not pending (a stale entry) is dropped, not claimed.
local now_ms = tonumber(ARGV[1])
local popped = redis.call('ZPOPMIN', KEYS[1], #ARGV - 1)
local reply = { #popped / 2 }
local leases = {}
for i = 1, #popped, 2 do
  local id = popped[i]
  local job_key = KEYS[3] .. id
  local job = redis.call('HMGET', job_key, 'status', 'type', 'userId', 'data', 'attempts',
    'maxAttempts', 'timeoutMs', 'priority')
  local timeout_ms = tonumber(job[7])
  if job[1] == 'pending' and timeout_ms then
    local token = ARGV[2 + #leases / 2]
    local attempts = (tonumber(job[5]) or 0) + 1
    redis.call('HSET', job_key, 'status', 'processing', 'attempts', attempts,
      'startedAt', ARGV[1], 'token', token, 'progress', '')
    leases[#leases + 1] = now_ms + timeout_ms
    leases[#leases + 1] = id .. '|' .. token
    local fields = { id, token, job[2] or '', job[3] or '', job[4] or '', attempts,
      job[6] or '1', job[7], job[8] or '0' }
    for _, field in ipairs(fields) do
      reply[#reply + 1] = field
    end
  end
end
if #leases > 0 then
  redis.call('ZADD', KEYS[2], unpack(leases))
end
return reply
