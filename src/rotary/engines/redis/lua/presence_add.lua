-- Adds or refreshes one client's presence entry; it lapses ARGV[1] ms after this call.
-- Times come from the Redis server's clock, so nodes with drifting clocks agree on expiry.
--
-- KEYS[1] zset client id -> lapse time (ms), KEYS[2] hash client id -> ClientInfo,
-- KEYS[3] hash client id -> user id
-- ARGV[1] TTL in milliseconds, ARGV[2] client id, ARGV[3] serialized ClientInfo, ARGV[4] user id

local now = redis.call("time")
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call("zadd", KEYS[1], now_ms + tonumber(ARGV[1]), ARGV[2])
redis.call("hset", KEYS[2], ARGV[2], ARGV[3])
redis.call("hset", KEYS[3], ARGV[2], ARGV[4])
for _, key in ipairs(KEYS) do
    redis.call("pexpire", key, ARGV[1])
end
