-- natter: an edit, a delete or a reaction (PROTOCOL-2 sections 3 and 6),
-- run by EVALSHA: applied to the message as Redis keeps it now (so two
-- processes toggling reactions at once both count), then, like a message,
-- given the room's next seq, appended to the room's stream and published.
--
-- KEYS[1]  natter:{ROOM}:seq   the room's last seq
-- KEYS[2]  natter:{ROOM}:log   the room's stream (entry SEQ-0, field e)
-- KEYS[3]  natter:{ROOM}:now   hash: SEQ -> the message as it is now, for
--                              messages changed since they were sent
-- ARGV[1]  the target's seq
-- ARGV[2]  the change, JSON: {kind = edit|delete|react, ts, by, author,
--          text (edit), emoji, nick, authors (react: who counts as the
--          reactor: its identities)}
-- ARGV[3]  the stream's length to keep (MAXLEN ~)
-- ARGV[4]  the channel
-- ARGV[5]  the room's name
-- ARGV[6]  the origin (PROC:N)
-- ARGV[7]  most different reactions on one message
--
-- Returns {seq, on} (on: 1 if a reaction is now there); errors NOTFOUND,
-- DELETED, FULL.

local target = ARGV[1]
local raw = redis.call('HGET', KEYS[3], target)
if not raw then
  local e = redis.call('XRANGE', KEYS[2], target .. '-0', target .. '-0')
  if not e[1] then
    return redis.error_reply('NOTFOUND no such message')
  end
  raw = e[1][2][2]
end
local m = cjson.decode(raw)
if m.k ~= 'm' then
  return redis.error_reply('NOTFOUND not a message')
end
if m.deleted then
  return redis.error_reply('DELETED the message was deleted')
end
local op = cjson.decode(ARGV[2])
local entry = {k = 'a', kind = op.kind, target = tonumber(target), ts = op.ts,
               by = op.by, author = op.author, o = ARGV[6]}
local on = 0
if op.kind == 'edit' then
  m.text = op.text
  m.edited_ts = op.ts
  entry.text = op.text
elseif op.kind == 'delete' then
  if type(m.image) == 'table' and m.image.id then
    redis.call('DEL', 'natter:img:' .. m.image.id)
  end
  m.deleted = true
  m.text = ''
  m.image = nil
  m.reactions = nil
  m.edited_ts = nil
  entry.of = m.from
elseif op.kind == 'react' then
  local rs = m.reactions
  if type(rs) ~= 'table' then
    rs = {}
  end
  local found = nil
  for i, r in ipairs(rs) do
    if r.emoji == op.emoji then
      found = i
    end
  end
  if found then
    local r = rs[found]
    local mine = nil
    for j, p in ipairs(r.by) do
      for _, a in ipairs(op.authors) do
        if p.author == a then
          mine = j
        end
      end
    end
    if mine then
      local gone = table.remove(r.by, mine)
      entry.by = gone.nick
      entry.author = gone.author
      if #r.by == 0 then
        table.remove(rs, found)
      end
    else
      table.insert(r.by, {author = op.author, nick = op.nick})
      on = 1
    end
  else
    if #rs >= tonumber(ARGV[7]) then
      return redis.error_reply('FULL too many different reactions')
    end
    table.insert(rs, {emoji = op.emoji, by = {{author = op.author, nick = op.nick}}})
    on = 1
  end
  m.reactions = rs
  entry.emoji = op.emoji
  entry.on = (on == 1)
end
redis.call('HSET', KEYS[3], target, cjson.encode(m))

if redis.call('EXISTS', KEYS[1]) == 0 then
  local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  if last[1] then
    redis.call('SET', KEYS[1], string.match(last[1][1], '^(%d+)-'))
  end
end
local seq = redis.call('INCR', KEYS[1])
local body = cjson.encode(entry)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-0', 'e', body)
redis.call('PUBLISH', ARGV[4], seq .. ' ' .. ARGV[5] .. ' ' .. body)
return {seq, on}
