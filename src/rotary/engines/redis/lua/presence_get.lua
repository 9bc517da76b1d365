-- Drops lapsed presence entries, then returns either every entry or the counts.
--
-- KEYS[1] zset of lapse times, KEYS[2] hash of ClientInfo, KEYS[3] hash of user ids
-- ARGV[1] "entries": returns the ClientInfo hash as {client id, info, ...}
--         "stats": returns {number of clients, number of distinct users}

local now = redis.call("time")
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local lapsed = redis.call("zrangebyscore", KEYS[1], "-inf", now_ms)
-- unpack() is bounded by Lua's stack, so large expiries go in chunks.
for first = 1, #lapsed, 1000 do
    local last = math.min(first + 999, #lapsed)
    redis.call("hdel", KEYS[2], unpack(lapsed, first, last))
    redis.call("hdel", KEYS[3], unpack(lapsed, first, last))
end
if #lapsed > 0 then
    redis.call("zremrangebyscore", KEYS[1], "-inf", now_ms)
end

if ARGV[1] == "entries" then
    return redis.call("hgetall", KEYS[2])
end

local users, num_users = {}, 0
for _, user in ipairs(redis.call("hvals", KEYS[3])) do
    if not users[user] then
        users[user] = true
        num_users = num_users + 1
    end
end
return {redis.call("hlen", KEYS[2]), num_users}
