-- natter's heartbeat (PROTOCOL-2 section 6), run by EVALSHA each few
-- seconds: this process is alive now (Redis's clock, so the processes'
-- clocks need not agree), and which processes have not said so for the
-- limit.
--
-- KEYS[1]  natter:procs   sorted set: PROC -> last heartbeat (ms)
-- ARGV[1]  this process
-- ARGV[2]  the limit (ms)
--
-- Returns {now_ms, dead process, ...}.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
local out = {now}
for _, p in ipairs(dead) do
  out[#out + 1] = p
end
return out
