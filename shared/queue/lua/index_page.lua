-- index_page: one page of a status index (a ZSET of the queue), highest score first
--
-- The order is Redis's own for ZREVRANGEBYSCORE: score descending, and members of equal score
-- in reverse byte order. A page after a cursor starts right after the cursor's entry, whether
-- or not that entry is still in the index (a job retried or purged since), so ties of one
-- score are neither repeated nor skipped. Only the index is read: the jobs' HASHes are read by
-- the caller, whose keys it learns here.
--
-- Input:
--   KEYS[1]    the index ZSET (ready, delayed, leases or done:<status>)
--   ARGV[1]    page size, 1..1000
--   ARGV[2]    the cursor's score, as Redis printed it; '' for the first page
--   ARGV[3]    the cursor's member ('' for the first page)
--
-- Output:
--   {more, member, score, member, score, ...}: more is 1 when entries follow this page
local count = tonumber(ARGV[1])
local after_score = tonumber(ARGV[2])
local after_member = ARGV[3]

-- Redis orders equal scores by memcmp; Lua's own string comparison follows the locale.
local function bytes_less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

local function after_cursor(member, score)
  if after_score == nil or tonumber(score) ~= after_score then
    return true
  end
  return bytes_less(member, after_member)
end

local page = {0}
local taken = 0
local offset = 0
local max = '+inf'
if after_score ~= nil then
  max = ARGV[2]
end
while true do
  local batch = redis.call('ZREVRANGEBYSCORE', KEYS[1], max, '-inf', 'WITHSCORES', 'LIMIT',
    offset, count + 1)
  for i = 1, #batch, 2 do
    if after_cursor(batch[i], batch[i + 1]) then
      if taken == count then
        page[1] = 1
        return page
      end
      page[#page + 1] = batch[i]
      page[#page + 1] = batch[i + 1]
      taken = taken + 1
    end
  end
  if #batch < 2 * (count + 1) then
    return page
  end
  offset = offset + count + 1
end
