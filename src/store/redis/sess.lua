-- natter: a process writes the state of a session it holds (PROTOCOL-2
-- section 6), or that the session is gone, unless another process has
-- claimed it since (claim.lua): a process that learns late that its
-- session moved (its close of the connection handled before the news)
-- must not write its older state over the new holder's.
--
-- KEYS[1]  natter:sess:HASH       the session, JSON {p = process, ...}
-- KEYS[2]  natter:sessof:PROC     this process's sessions (a set)
-- ARGV[1]  this process
-- ARGV[2]  HASH
-- ARGV[3]  the state (JSON, p = this process), or '' if it is gone
-- ARGV[4]  ms it is kept (a session held for a resume), or '' for ever
--
-- Returns 1 if written, 0 if another process holds the session.

local raw = redis.call('GET', KEYS[1])
if raw then
  local ok, s = pcall(cjson.decode, raw)
  if ok and type(s) == 'table' and s.p ~= nil and s.p ~= ARGV[1] then
    redis.call('SREM', KEYS[2], ARGV[2])
    return 0
  end
end
if ARGV[3] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[2])
elseif ARGV[4] ~= '' then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
  redis.call('SADD', KEYS[2], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[3])
  redis.call('SADD', KEYS[2], ARGV[2])
end
return 1
