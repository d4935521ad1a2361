-- natter: a connection on this process presents the token of a session
-- (PROTOCOL-2 section 6); if Redis knows the session, it becomes this
-- process's, and the process that had it is told (it lets go of it).
--
-- KEYS[1]  natter:sess:HASH       the session, JSON {p = process, nick,
--                                 rooms, guest, account}
-- KEYS[2]  natter:sessof:PROC     this process's sessions (a set)
-- ARGV[1]  this process
-- ARGV[2]  HASH
-- ARGV[3]  the channel to tell the processes on
--
-- Returns the session as it was (JSON), or false.

local raw = redis.call('GET', KEYS[1])
if not raw then
  return false
end
local s = cjson.decode(raw)
local from = s.p
s.p = ARGV[1]
-- A plain SET: no expiry any more, the session is live here.
redis.call('SET', KEYS[1], cjson.encode(s))
redis.call('SADD', KEYS[2], ARGV[2])
-- Its nick goes with it (natter:owner, see nick.lua).
if type(s.nick) == 'string' then
  local account = '-'
  if type(s.account) == 'string' then
    account = s.account
  end
  redis.call('HSET', 'natter:owner', string.lower(s.nick), ARGV[1] .. ' ' .. account)
end
if from ~= ARGV[1] then
  redis.call('SREM', 'natter:sessof:' .. tostring(from), ARGV[2])
  redis.call('PUBLISH', ARGV[3], cjson.encode({
    p = ARGV[1], k = 'taken', from = from, h = ARGV[2], n = s.nick, rooms = s.rooms
  }))
end
return raw
