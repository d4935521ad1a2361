-- natter: a read of a room's history as it is now (PROTOCOL-2 sections 3
-- and 6), run by EVALSHA: messages with their edits, deletes and reactions
-- applied (from natter:{ROOM}:now), change entries left out of the page.
--
-- KEYS[1]  natter:{ROOM}:seq
-- KEYS[2]  natter:{ROOM}:log
-- KEYS[3]  natter:{ROOM}:now
-- ARGV[1]  'latest' (newest first, below ARGV[2]), 'after' (oldest first,
--          above ARGV[2] and below ARGV[3]), 'one' (the message ARGV[2]),
--          'authors' (newest first, the messages not deleted whose author
--          is one of the JSON list ARGV[3]) or 'from' (newest first, those
--          not deleted sent under the nick whose key is ARGV[3])
-- ARGV[2]  a seq ('' for none)
-- ARGV[3]  'after': the upper bound ('' for none)
-- ARGV[4]  most messages
-- ARGV[5]  'after' as a catch-up: also the changes after ARGV[2] whose
--          target is at or before it ('1'), at most ARGV[4] entries in all
-- ARGV[6]  most entries to look through
-- ARGV[7.. ] a search's words (lowercase ASCII letters and digits): only
--          messages whose entry has each of them, in any case, any letter
--          also as an accented Latin letter, are returned; natter then
--          matches them exactly. A wide sieve (see below), so what natter
--          would find is never left out, and most of a room's entries need
--          not be sent back.
--
-- Returns {last_seq, {seq, entry, ...} messages, {seq, entry, ...} changes}.

local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local messages = {}
local changes = {}

local function now(seq, entry)
  local cur = redis.call('HGET', KEYS[3], seq)
  return cur or entry
end

if ARGV[1] == 'one' then
  local id = ARGV[2] .. '-0'
  local e = redis.call('XRANGE', KEYS[2], id, id)
  if e[1] then
    messages = {ARGV[2], now(ARGV[2], e[1][2][2])}
  end
  return {last, messages, changes}
end

-- 'authors' and 'from' read like 'latest', keeping only what matches.
local filter = nil
if ARGV[1] == 'authors' then
  local wanted = {}
  for _, a in ipairs(cjson.decode(ARGV[3])) do
    wanted[a] = true
  end
  filter = function(m) return m.author ~= nil and wanted[m.author] == true end
elseif ARGV[1] == 'from' then
  filter = function(m) return type(m.from) == 'string' and string.lower(m.from) == ARGV[3] end
end
local latest = ARGV[1] == 'latest' or filter ~= nil

-- The search's sieve. natter folds case and the accents of Latin letters
-- (U+00C0-U+017F: UTF-8 lead bytes 195-197) and a few signs (the Kelvin
-- and Angstrom signs: lead byte 226); nothing else folds to an ASCII
-- letter. So an entry has a word natter would match if its lowercase has
-- the word as it is, or, when it holds such a byte, if it matches a
-- pattern taking any of them for any letter.
local words = {}
local sieve = {}
for i = 7, #ARGV do
  local w = ARGV[i]
  local p = {}
  for j = 1, #w do
    local c = string.sub(w, j, j)
    p[#p + 1] = '[' .. c .. string.upper(c) .. '\195-\197\226][\128-\191]*'
  end
  words[#words + 1] = w
  sieve[#sieve + 1] = table.concat(p)
end
local function sifted(entry)
  if #words == 0 then
    return true
  end
  local low = string.lower(entry)
  local foldable = nil
  for i, w in ipairs(words) do
    if not string.find(low, w, 1, true) then
      if foldable == nil then
        foldable = string.find(entry, '[\195-\197\226]') ~= nil
      end
      if not foldable or not string.find(entry, sieve[i]) then
        return false
      end
    end
  end
  return true
end

local want = tonumber(ARGV[4])
local budget = tonumber(ARGV[6])
local catch_up = ARGV[5] == '1'
local since = tonumber(ARGV[2] ~= '' and ARGV[2] or '0')
local chunk = math.max(want * 2, 64)
local got = 0
local cursor
if latest then
  cursor = ARGV[2] ~= '' and ('(' .. ARGV[2] .. '-0') or '+'
else
  cursor = '(' .. since .. '-0'
end
local top = (not latest and ARGV[3] ~= '') and ('(' .. ARGV[3] .. '-0') or '+'
while got < want and budget > 0 do
  local page
  if latest then
    page = redis.call('XREVRANGE', KEYS[2], cursor, '-', 'COUNT', chunk)
  else
    page = redis.call('XRANGE', KEYS[2], cursor, top, 'COUNT', chunk)
  end
  if #page == 0 then
    break
  end
  for _, e in ipairs(page) do
    local seq = string.match(e[1], '^(%d+)-')
    local body = e[2][2]
    budget = budget - 1
    if string.sub(body, 1, 9) == '{"k":"a",' or string.find(body, '"k":"a"', 1, true) then
      if catch_up then
        local c = cjson.decode(body)
        if c.target and c.target <= since then
          local t = cjson.decode(now(tostring(c.target), '{}'))
          if c.kind == 'delete' or not t.deleted then
            changes[#changes + 1] = seq
            changes[#changes + 1] = body
            got = got + 1
          end
        end
      end
    elseif filter then
      local cur = now(seq, body)
      if sifted(cur) then
        local m = cjson.decode(cur)
        if not m.deleted and filter(m) then
          messages[#messages + 1] = seq
          messages[#messages + 1] = cur
          got = got + 1
        end
      end
    else
      local cur = now(seq, body)
      if sifted(cur) then
        messages[#messages + 1] = seq
        messages[#messages + 1] = cur
        got = got + 1
      end
    end
    if got >= want or budget <= 0 then
      break
    end
  end
  cursor = '(' .. page[#page][1]
  if #page < chunk then
    break
  end
end
return {last, messages, changes}
