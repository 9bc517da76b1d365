-- Removes one client's presence entry.
-- KEYS[1] zset of lapse times, KEYS[2] hash of ClientInfo, KEYS[3] hash of user ids; ARGV[1] client id

redis.call("zrem", KEYS[1], ARGV[1])
redis.call("hdel", KEYS[2], ARGV[1])
redis.call("hdel", KEYS[3], ARGV[1])
