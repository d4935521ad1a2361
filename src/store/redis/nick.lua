-- natter: who holds a nick across processes (PROTOCOL-2 section 6), run by
-- EVALSHA, so two processes asking for one nick at once cannot both have
-- it. An account's connections on several processes share its name; an
-- account takes its name from a guest elsewhere, who is told (`lost`).
--
-- KEYS[1]  natter:owner   hash: KEY -> "PROC ACCOUNT" (ACCOUNT '-' for a guest)
-- ARGV[1]  'hold' or 'release'
-- ARGV[2]  the nick's key
-- ARGV[3]  this process
-- ARGV[4]  the account holding it here, '-' for a guest
-- ARGV[5]  the channel
--
-- Returns 1 (held, or released) or 0 (held by someone else).

local cur = redis.call('HGET', KEYS[1], ARGV[2])
local mine = ARGV[3] .. ' ' .. ARGV[4]
if ARGV[1] == 'release' then
  if cur and string.match(cur, '^(%S+)') == ARGV[3] then
    redis.call('HDEL', KEYS[1], ARGV[2])
  end
  return 1
end
if not cur then
  redis.call('HSET', KEYS[1], ARGV[2], mine)
  return 1
end
local p, a = string.match(cur, '^(%S+) (%S+)$')
if p == ARGV[3] then
  redis.call('HSET', KEYS[1], ARGV[2], mine)
  return 1
end
if ARGV[4] ~= '-' and a == ARGV[4] then
  return 1
end
if ARGV[4] ~= '-' and a == '-' then
  redis.call('HSET', KEYS[1], ARGV[2], mine)
  redis.call('PUBLISH', ARGV[5], cjson.encode({p = p, k = 'lost', key = ARGV[2]}))
  return 1
end
return 0
