-- natter: one batch of changes to accounts, login tokens and rooms'
-- settings and lists (PROTOCOL-2 sections 1, 2 and 6), all or nothing,
-- run by EVALSHA; then every process is told to read them again.
--
-- KEYS[1]  natter:accounts  hash: KEY -> {name, phc, created}
-- KEYS[2]  natter:tokens    hash: HASH -> {account, expires}
-- KEYS[3]  natter:rooms     hash: ROOM -> {owner, topic, invite_only}
-- KEYS[4]  natter:entries   hash: "ROOM KIND SUBJECT" -> the entry
-- ARGV[1]  the changes, a JSON array of {k = kind, ...}
-- ARGV[2]  the channel to tell the processes on
-- ARGV[3]  this process
--
-- An account registered here while another process registered the same
-- name (another creation time) refuses the whole batch: CONFLICT.

local changes = cjson.decode(ARGV[1])

for _, c in ipairs(changes) do
  if c.k == 'account' then
    local cur = redis.call('HGET', KEYS[1], c.key)
    if cur and cjson.decode(cur).created ~= c.value.created then
      return redis.error_reply('CONFLICT account ' .. c.key .. ' exists already')
    end
  end
end

local function drop_tokens(account)
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    if cjson.decode(all[i + 1]).account == account then
      redis.call('HDEL', KEYS[2], all[i])
    end
  end
end

for _, c in ipairs(changes) do
  if c.k == 'account' then
    if redis.call('HEXISTS', KEYS[1], c.key) == 0 then
      drop_tokens(c.key)
    end
    redis.call('HSET', KEYS[1], c.key, cjson.encode(c.value))
  elseif c.k == 'account_del' then
    redis.call('HDEL', KEYS[1], c.key)
    drop_tokens(c.key)
  elseif c.k == 'token' then
    redis.call('HSET', KEYS[2], c.key, cjson.encode(c.value))
  elseif c.k == 'token_del' then
    redis.call('HDEL', KEYS[2], c.key)
  elseif c.k == 'tokens_del' then
    drop_tokens(c.key)
  elseif c.k == 'room' then
    redis.call('HSET', KEYS[3], c.key, cjson.encode(c.value))
  elseif c.k == 'entry' then
    redis.call('HSETNX', KEYS[3], c.room, cjson.encode({topic = '', invite_only = false}))
    redis.call('HSET', KEYS[4], c.key, cjson.encode(c.value))
  elseif c.k == 'entry_del' then
    redis.call('HDEL', KEYS[4], c.key)
  end
end

redis.call('PUBLISH', ARGV[2], cjson.encode({p = ARGV[3], k = 'state'}))
return #changes
