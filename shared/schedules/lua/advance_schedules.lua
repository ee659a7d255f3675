-- advance_schedules: record the slot each schedule fired last, never moving one back
--
-- A tick that started before another one finished may offer an older slot than the one already
-- recorded: it is ignored, so a schedule's record only moves forward.
--
-- Input:
--   KEYS[i]      schedule:<name> STRING: epoch ms of the last slot fired (or skipped)
--   ARGV[2i-1]   that schedule's slot, epoch ms
--   ARGV[2i]     its record's PX: until a while after its next slot
--
-- Output:
--   how many records moved forward
local moved = 0
for i, key in ipairs(KEYS) do
  local slot = tonumber(ARGV[2 * i - 1])
  local last = tonumber(redis.call('GET', key) or '')
  if not last or last < slot then
    redis.call('SET', key, ARGV[2 * i - 1], 'PX', ARGV[2 * i])
    moved = moved + 1
  end
end
return moved
