-- Shared head of every queue script (the Rust side appends one body).
-- KEYS[1]: the build's key prefix; ARGV[1]: the keys' TTL in ms.
-- Every state change of the queue is one of these scripts, so it is atomic.
-- TIME before writes needs effects replication (always on from Redis 7).
if redis.replicate_commands then redis.replicate_commands() end
local p = KEYS[1]
local ttl = tonumber(ARGV[1])
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function touch(...)
  for _, k in ipairs({...}) do
    redis.call('PEXPIRE', p .. k, ttl)
  end
end
local function drop_lease(id)
  redis.call('ZREM', p .. 'running', id)
  local owner = redis.call('HGET', p .. 'owner', id)
  if owner then
    redis.call('SREM', p .. 'held:' .. owner, id)
  end
  redis.call('HDEL', p .. 'owner', id)
end
-- Leases that lapsed (their machine died or hung) go back to the queue's head.
local function reclaim(now)
  local lapsed = redis.call('ZRANGEBYSCORE', p .. 'running', '-inf', now)
  for _, id in ipairs(lapsed) do
    drop_lease(id)
    redis.call('HINCRBY', p .. 'lapsed', id, 1)
    redis.call('LPUSH', p .. 'queue', id)
  end
  touch('lapsed', 'queue')
end
