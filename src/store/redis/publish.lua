-- natter's atomic publish (PROTOCOL-2 section 6), run by EVALSHA: one room
-- entry (a message, an edit, a delete, a reaction) gets the room's next
-- seq, is appended to the room's stream under that seq, and is published
-- to the other natter processes, all at once; a repeated cid gets the seq
-- it was first given back, and nothing else happens.
--
-- KEYS[1]  natter:{ROOM}:seq   the room's last seq (a counter)
-- KEYS[2]  natter:{ROOM}:log   the room's stream: entry id SEQ-0, field e
-- KEYS[3]  the cid's key (natter:cid:{...}), or none when the entry has no cid
-- ARGV[1]  the entry, as stored (opaque here)
-- ARGV[2]  the stream's length to keep (MAXLEN ~)
-- ARGV[3]  the channel to publish on
-- ARGV[4]  seconds a cid is remembered
-- ARGV[5]  the room's name (published before the entry)
--
-- Returns {1, seq} for a new entry; for a repeated cid {0, seq, ENTRY},
-- the entry as first stored (false if the stream no longer keeps it).

if KEYS[3] then
  local known = redis.call('GET', KEYS[3])
  if known then
    local first = redis.call('XRANGE', KEYS[2], known .. '-0', known .. '-0')
    local entry = false
    if first[1] then
      entry = first[1][2][2]
    end
    return {0, tonumber(known), entry}
  end
end

-- A counter lost while the stream survived (a restore, a DEL by hand)
-- starts again after the stream's last entry, never below it: a seq is
-- never given twice.
if redis.call('EXISTS', KEYS[1]) == 0 then
  local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  if last[1] then
    local top = string.match(last[1][1], '^(%d+)-')
    redis.call('SET', KEYS[1], top)
  end
end

local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'e', ARGV[1])
if KEYS[3] then
  redis.call('SET', KEYS[3], seq, 'EX', ARGV[4])
end
redis.call('PUBLISH', ARGV[3], seq .. ' ' .. ARGV[5] .. ' ' .. ARGV[1])
return {1, seq}
