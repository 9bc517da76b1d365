-- Reads a channel's stream position and, if asked, a range of its publications.
-- A channel without meta gets the given epoch at offset 0, so the position stays stable from then on.
--
-- KEYS[1] stream (or list), KEYS[2] meta hash
-- ARGV[1] epoch to use if the stream has none
-- ARGV[2] meta TTL in milliseconds, 0 = leave the meta's TTL alone
-- ARGV[3] limit: 0 = position only, -1 = everything kept, n = at most n
-- ARGV[4] "1" for newest first
-- ARGV[5] since offset (exclusive), "" = from the start (or the top when reversed)
-- ARGV[6] "1" when history is kept in a list: then every entry is returned, newest first, and the
--         caller selects the range by offset
-- Returns {top offset, epoch, {serialized Publication, ...}}.

local stream_key, meta_key = KEYS[1], KEYS[2]
local limit = tonumber(ARGV[3])
local since = ARGV[5]

local meta = redis.call("hmget", meta_key, "e", "s")
local epoch, top = meta[1], tonumber(meta[2] or "0")
if not epoch then
    epoch = ARGV[1]
    redis.call("hset", meta_key, "e", epoch)
end
if ARGV[2] ~= "0" then
    redis.call("pexpire", meta_key, ARGV[2])
end

if limit == 0 then
    return {top, epoch, {}}
end
if ARGV[6] == "1" then
    return {top, epoch, redis.call("lrange", stream_key, 0, -1)}
end

local count = {}
if limit > 0 then
    count = {"COUNT", limit}
end

local entries
if ARGV[4] == "1" then
    local upto = top
    if since ~= "" then
        upto = tonumber(since) - 1
    end
    if upto < 1 or upto > top then
        return {top, epoch, {}}
    end
    entries = redis.call("xrevrange", stream_key, upto, "-", unpack(count))
else
    local from = "-"
    if since ~= "" then
        from = tostring(tonumber(since) + 1)
    end
    entries = redis.call("xrange", stream_key, from, "+", unpack(count))
end

local pubs = {}
for i, entry in ipairs(entries) do
    pubs[i] = entry[2][2]
end
return {top, epoch, pubs}
