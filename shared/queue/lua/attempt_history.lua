-- attempt_history: a job's history of attempts that did not complete, with one more appended
--
-- A library, not run alone: fail_job.lua and settle.lua include it by name and call
-- with_attempt(history_json, attempt, outcome, at_ms, error_json). The history is a JSON array,
-- oldest first, of at most MAX_HISTORY entries {attempt, outcome, at, error}; the entry that
-- would make it longer pushes out the oldest. A history that is not valid JSON starts again.
--
-- Input:
--   with_attempt(history_json, attempt, outcome, at_ms, error_json)
--   history_json   the job's `history` field (false or '' when it has none)
--   attempt        the attempt's number (its `attempts` count)
--   outcome        'retrying', 'failed' or 'lease_expired'
--   at_ms          epoch ms of the outcome
--   error_json     the attempt's error, JSON text {message, kind, traceback?}
--
-- Output:
--   the new history, JSON text
local MAX_HISTORY = 10

local function with_attempt(history_json, attempt, outcome, at_ms, error_json)
  local history = {}
  if history_json and history_json ~= '' then
    local ok, decoded = pcall(cjson.decode, history_json)
    if ok and type(decoded) == 'table' then
      history = decoded
    end
  end
  local decoded_ok, attempt_error = pcall(cjson.decode, error_json)
  history[#history + 1] = { attempt = tonumber(attempt) or 0, outcome = outcome,
    at = tonumber(at_ms), error = decoded_ok and attempt_error or nil }
  while #history > MAX_HISTORY do
    table.remove(history, 1)
  end
  return cjson.encode(history)
end
