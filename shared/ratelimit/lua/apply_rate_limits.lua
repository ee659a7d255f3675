-- apply_rate_limits: check, and when asked consume, every rate-limit policy: all or nothing
--
-- A library, not run alone: the scripts that apply limits (check_rate_limits.lua,
-- enqueue_job.lua) include it by name and call apply_rate_limits(rl_keys, rl_args, now_ms).
-- Mirrors shared/ratelimit/algorithms.py (window arithmetic) and shared/ratelimit/state.py
-- (storage, the all-or-nothing decision) line for line; tests run both on the same tables of
-- cases.
--
-- Redis calls: one MGET (when there is a key), then, only when consuming and allowed, one
-- SET ... PX per key (DEL instead when none of its states matters any more).
--
-- Input:
--   apply_rate_limits(rl_keys, rl_args, now_ms)
--   rl_keys[k]         STRING, the state of every policy of one (name, identifier):
--                      "<slot>:<n>:<n>[;<slot>:...]", slot = algorithm letter .. window_ms
--   rl_args[1]         cost (integer; negative gives capacity back)
--   rl_args[2]         '1' to consume, '0' to only read (peek)
--   rl_args[3]         n, the number of policies to check
--   rl_args[4i..4i+3]  for policy i = 1..n: index into rl_keys, algorithm letter ('f' fixed,
--                      's' sliding, 't' token), limit, window_ms
--   now_ms             number, the caller's clock in epoch milliseconds (never Redis TIME)
--
-- Output:
--   allowed, reply
--   allowed            true when every policy admits the request (and, when consuming, every key
--                      has been written with SET ... PX); false when any policy denies (nothing
--                      written)
--   reply              {now_ms, then per policy: allowed 1/0, remaining, reset_at_ms,
--                      retry_after_ms}

local RL_FIELD_COUNTS = {f = 2, s = 3, t = 2}

-- floor(a / b) for integers, exact while |a| < 2^53 (corrects a rounded double quotient)
local function rl_idiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then
    q = q - 1
  elseif (q + 1) * b <= a then
    q = q + 1
  end
  return q
end

local function rl_ceil_div(a, b)
  return -rl_idiv(-a, b)
end

local function rl_numbers(fields)
  local numbers = {}
  for i = 2, #fields do
    if #fields[i] > 15 or not string.match(fields[i], '^%d+$') then
      return nil
    end
    numbers[i - 1] = tonumber(fields[i])
  end
  return numbers
end

local function rl_decode(value)
  local states = {}
  if type(value) ~= 'string' then
    return states
  end
  for entry in string.gmatch(value, '[^;]+') do
    local fields = {}
    for part in string.gmatch(entry, '[^:]+') do
      fields[#fields + 1] = part
    end
    local numbers = rl_numbers(fields)
    if numbers and #fields > 0 and string.match(fields[1], '^%a%d+$')
        and RL_FIELD_COUNTS[string.sub(fields[1], 1, 1)] == #numbers then
      states[fields[1]] = numbers
    end
  end
  return states
end

local function rl_encode(slot, state)
  local parts = {slot}
  for i = 1, #state do
    parts[i + 1] = string.format('%d', state[i])
  end
  return table.concat(parts, ':')
end

local function rl_fits(used, ask)
  return ask.cost <= 0 or used + ask.cost <= ask.limit
end

local function rl_outcome(ask, fits, remaining, restore_at, retry_at, state, expires_at)
  if fits then
    return {true, math.max(0, remaining), restore_at, 0, state, expires_at}
  end
  if ask.cost > ask.limit then
    retry_at = ask.now + ask.window
  end
  return {false, math.max(0, remaining), retry_at, retry_at - ask.now, state, expires_at}
end

local function rl_fixed(ask, state)
  local index = rl_idiv(ask.now, ask.window)
  local count = 0
  if state and state[1] >= index then
    count = math.min(state[2], ask.limit)
  end
  local fits = rl_fits(count, ask)
  if ask.commit and fits then
    count = math.max(0, count + ask.cost)
  end
  local window_end = (index + 1) * ask.window
  local restore_at = window_end
  if count == 0 then
    restore_at = ask.now
  end
  return rl_outcome(ask, fits, ask.limit - count, restore_at, window_end, {index, count}, window_end)
end

local function rl_sliding_counts(state, index, limit)
  if not state then
    return 0, 0
  end
  if state[1] >= index then
    return math.min(state[2], limit), math.min(state[3], limit)
  end
  if state[1] == index - 1 then
    return 0, math.min(state[2], limit)
  end
  return 0, 0
end

-- a refund empties this window first, then the previous one
local function rl_sliding_add(current, previous, cost)
  if cost >= 0 then
    return current + cost, previous
  end
  local taken = math.min(current, -cost)
  return current - taken, math.max(0, previous + cost + taken)
end

-- largest ms-left-in-window x in [0, window] with floor(count * x / window) <= room
local function rl_max_left(count, room, window)
  if count == 0 then
    return window
  end
  return math.min(window, rl_ceil_div((room + 1) * window, count) - 1)
end

-- earliest time >= now at which the weighted count is at most room, nothing more consumed
local function rl_sliding_admit_at(previous, current, start, ask, room)
  if current <= room then
    return math.max(ask.now, start + ask.window - rl_max_left(previous, room - current, ask.window))
  end
  return start + 2 * ask.window - rl_max_left(current, room, ask.window)
end

local function rl_sliding(ask, state)
  local index = rl_idiv(ask.now, ask.window)
  local start = index * ask.window
  local left = start + ask.window - ask.now
  local current, previous = rl_sliding_counts(state, index, ask.limit)
  local fits = rl_fits(rl_idiv(previous * left, ask.window) + current, ask)
  if ask.commit and fits then
    current, previous = rl_sliding_add(current, previous, ask.cost)
  end
  local used = rl_idiv(previous * left, ask.window) + current
  local restore_at = rl_sliding_admit_at(previous, current, start, ask, 0)
  local retry_at = rl_sliding_admit_at(previous, current, start, ask, ask.limit - ask.cost)
  return rl_outcome(ask, fits, ask.limit - used, restore_at, retry_at,
    {index, current, previous}, start + 2 * ask.window)
end

local function rl_refilled(ask, state, capacity)
  if not state then
    return 0
  end
  local used = math.min(state[1], capacity)
  local elapsed = math.max(0, ask.now - state[2])
  if elapsed >= ask.window then
    return 0
  end
  return math.max(0, used - elapsed * ask.limit)
end

local function rl_token(ask, state)
  local capacity = ask.limit * ask.window
  local used = rl_refilled(ask, state, capacity)
  local need = ask.cost * ask.window
  local fits = ask.cost <= 0 or used + need <= capacity
  if ask.commit and fits then
    used = math.max(0, used + need)
  end
  local restore_at = ask.now + rl_ceil_div(used, ask.limit)
  local retry_at = ask.now + rl_ceil_div(used + need - capacity, ask.limit)
  local remaining = rl_idiv(capacity - used, ask.window)
  return rl_outcome(ask, fits, remaining, restore_at, retry_at, {used, ask.now}, restore_at)
end

local RL_ALGORITHMS = {f = rl_fixed, s = rl_sliding, t = rl_token}

local function rl_specs(rl_args)
  local specs = {}
  for i = 1, tonumber(rl_args[3]) do
    local at = 4 * i
    specs[i] = {
      key = tonumber(rl_args[at]),
      algorithm = tostring(rl_args[at + 1]),
      limit = tonumber(rl_args[at + 2]),
      window = tonumber(rl_args[at + 3]),
      slot = tostring(rl_args[at + 1]) .. tostring(rl_args[at + 3]),
    }
  end
  return specs
end

local function rl_decide(specs, states, now, cost, commit)
  local allowed, outcomes = true, {}
  for i, spec in ipairs(specs) do
    local ask = {limit = spec.limit, window = spec.window, now = now, cost = cost, commit = commit}
    outcomes[i] = RL_ALGORITHMS[spec.algorithm](ask, states[spec.key][spec.slot])
    allowed = allowed and outcomes[i][1]
  end
  return allowed, outcomes
end

local function rl_write(rl_keys, specs, outcomes, now)
  local order, values, expires = {}, {}, {}
  for i, spec in ipairs(specs) do
    local entry = rl_encode(spec.slot, outcomes[i][5])
    if values[spec.key] then
      values[spec.key] = values[spec.key] .. ';' .. entry
    else
      order[#order + 1] = spec.key
      values[spec.key] = entry
    end
    expires[spec.key] = math.max(expires[spec.key] or 0, outcomes[i][6])
  end
  for _, key in ipairs(order) do
    local ttl = expires[key] - now
    if ttl > 0 then
      redis.call('SET', rl_keys[key], values[key], 'PX', string.format('%d', ttl))
    else
      redis.call('DEL', rl_keys[key])
    end
  end
end

local function rl_reply(outcomes, now)
  local reply = {now}
  for _, outcome in ipairs(outcomes) do
    reply[#reply + 1] = outcome[1] and 1 or 0
    reply[#reply + 1] = outcome[2]
    reply[#reply + 1] = outcome[3]
    reply[#reply + 1] = outcome[4]
  end
  return reply
end

local function apply_rate_limits(rl_keys, rl_args, now_ms)
  local cost, consume = tonumber(rl_args[1]), tostring(rl_args[2]) == '1'
  local specs = rl_specs(rl_args)
  local states = {}
  if #rl_keys > 0 then
    local values = redis.call('MGET', unpack(rl_keys))
    for k = 1, #rl_keys do
      states[k] = rl_decode(values[k])
    end
  end
  local allowed, outcomes = rl_decide(specs, states, now_ms, cost, false)
  if allowed and consume and cost ~= 0 then
    allowed, outcomes = rl_decide(specs, states, now_ms, cost, true)
    rl_write(rl_keys, specs, outcomes, now_ms)
  end
  return allowed, rl_reply(outcomes, now_ms)
end
