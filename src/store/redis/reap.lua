-- natter: forget one process's nicks and members (PROTOCOL-2 section 6),
-- run by EVALSHA. For a process that died (its heartbeat is older than
-- the limit) a survivor runs it and publishes that the process is gone, so
-- every process drops its users; a process that comes back to Redis runs it
-- on itself first, quietly, then writes what it holds again.
--
-- KEYS[1]  natter:nicks     hash: "KEY PROC" -> nick
-- KEYS[2]  natter:members   hash: "ROOM KEY PROC" -> member
-- KEYS[3]  natter:procs     sorted set: PROC -> last heartbeat (ms)
-- ARGV[1]  the process
-- ARGV[2]  the channel to say it on ('' to say nothing)
-- ARGV[3]  only if its heartbeat is older than this (ms; '' for any)
-- ARGV[4]  for a process that died: how long its WebSocket sessions stay
--          to be resumed elsewhere (ms, its --resume-grace)
--
-- Returns the number of entries removed.

if ARGV[3] ~= '' then
  local beat = redis.call('ZSCORE', KEYS[3], ARGV[1])
  if beat and tonumber(beat) >= tonumber(ARGV[3]) then
    return 0
  end
end
local suffix = ' ' .. ARGV[1]
local removed = 0
for _, key in ipairs({KEYS[1], KEYS[2]}) do
  local cursor = '0'
  repeat
    local page = redis.call('HSCAN', key, cursor, 'COUNT', 1000)
    cursor = page[1]
    local fields = page[2]
    for i = 1, #fields, 2 do
      local f = fields[i]
      if string.sub(f, -#suffix) == suffix then
        redis.call('HDEL', key, f)
        removed = removed + 1
      end
    end
  until cursor == '0'
end
-- The nicks it owned are free (natter:owner: "PROC ACCOUNT").
local owner_cursor = '0'
repeat
  local page = redis.call('HSCAN', 'natter:owner', owner_cursor, 'COUNT', 1000)
  owner_cursor = page[1]
  local fields = page[2]
  for i = 1, #fields, 2 do
    if string.match(fields[i + 1], '^(%S+)') == ARGV[1] then
      redis.call('HDEL', 'natter:owner', fields[i])
    end
  end
until owner_cursor == '0'

-- A dead process's sessions: held for the grace, then gone.
if ARGV[2] ~= '' then
  local set = 'natter:sessof:' .. ARGV[1]
  for _, h in ipairs(redis.call('SMEMBERS', set)) do
    local key = 'natter:sess:' .. h
    local raw = redis.call('GET', key)
    if raw and cjson.decode(raw).p == ARGV[1] then
      redis.call('PEXPIRE', key, ARGV[4])
    end
  end
  redis.call('DEL', set)
end
-- Only a dead process leaves the heartbeats (one reaping itself after a
-- reconnect goes on beating).
local was = 0
if ARGV[2] ~= '' then
  was = redis.call('ZREM', KEYS[3], ARGV[1])
end
if ARGV[2] ~= '' and (was == 1 or removed > 0) then
  redis.call('PUBLISH', ARGV[2], cjson.encode({p = ARGV[1], k = 'gone'}))
end
return removed
