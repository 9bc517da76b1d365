-- Publishes one publication to a channel, keeping it in the channel's stream when history is on.
-- Atomic: idempotency check, version check, offset increment, append, meta and PUB/SUB in one step.
--
-- KEYS[1] stream (a Redis stream, or a list when ARGV[11] is "1")
-- KEYS[2] meta hash: e = epoch, s = top offset, v = version, ve = version epoch
-- KEYS[3] idempotency result hash: o = offset, e = epoch
-- ARGV[1]  serialized Publication without offset
-- ARGV[2]  history size, 0 = not kept
-- ARGV[3]  history TTL in milliseconds
-- ARGV[4]  meta TTL in milliseconds, 0 = the meta hash does not expire
-- ARGV[5]  epoch to use if the stream has none
-- ARGV[6]  idempotency result TTL in milliseconds, 0 = no idempotency key
-- ARGV[7]  "1" when subscribers get the previous publication for delta compression
-- ARGV[8]  version, 0 = unversioned
-- ARGV[9]  version epoch
-- ARGV[10] "publish" or "spublish"
-- ARGV[11] "1" to keep history in a list
-- ARGV[12] PUB/SUB channel
-- Returns {offset, epoch, suppressed (0 or 1)}.
--
-- The PUB/SUB message is a 1-byte type and protobuf: "p" Publication, or "d" varint length + the
-- previous Publication + the Publication. Offset (field 6) and epoch (field 14) are appended to the
-- serialized bytes: a later occurrence of a protobuf field overrides an earlier one.

local stream_key, meta_key, result_key = KEYS[1], KEYS[2], KEYS[3]
local payload = ARGV[1]
local size = tonumber(ARGV[2])
local use_delta = ARGV[7] == "1"
local version = tonumber(ARGV[8])
local version_epoch = ARGV[9]
local use_lists = ARGV[11] == "1"

local function varint(n)
    local out = {}
    repeat
        local low = n % 128
        n = (n - low) / 128
        if n > 0 then
            low = low + 128
        end
        out[#out + 1] = string.char(low)
    until n == 0
    return table.concat(out)
end

local function last_entry()
    if use_lists then
        return redis.call("lindex", stream_key, 0) or ""
    end
    local newest = redis.call("xrevrange", stream_key, "+", "-", "COUNT", 1)
    if #newest == 0 then
        return ""
    end
    return newest[1][2][2]
end

local function append(entry, offset)
    if use_lists then
        redis.call("lpush", stream_key, entry)
        redis.call("ltrim", stream_key, 0, size - 1)
    else
        redis.call("xadd", stream_key, "MAXLEN", size, offset .. "-0", "d", entry)
    end
    redis.call("pexpire", stream_key, ARGV[3])
end

if ARGV[6] ~= "0" then
    local cached = redis.call("hmget", result_key, "o", "e")
    if cached[1] then
        return {tonumber(cached[1]), cached[2], 1}
    end
end

local offset, epoch, prev, entry = 0, "", "", payload
if size > 0 then
    local meta = redis.call("hmget", meta_key, "e", "s", "v", "ve")
    epoch = meta[1]
    if not epoch then
        -- A new epoch: whatever is left of an older stream must not mix with it.
        epoch = ARGV[5]
        redis.call("hset", meta_key, "e", epoch)
        redis.call("del", stream_key)
    end
    if ARGV[4] ~= "0" then
        redis.call("pexpire", meta_key, ARGV[4])
    end
    local kept_version = tonumber(meta[3] or "0")
    local same_epoch = version_epoch == "" or version_epoch == (meta[4] or "")
    if version > 0 and same_epoch and version <= kept_version then
        return {tonumber(meta[2] or "0"), epoch, 2}
    end
    if use_delta then
        prev = last_entry()
    end
    offset = redis.call("hincrby", meta_key, "s", 1)
    redis.call("hset", meta_key, "v", ARGV[8], "ve", version_epoch)
    entry = payload .. "\48" .. varint(offset)
    append(entry, offset)
end

local message = entry
if offset > 0 then
    message = message .. "\114" .. varint(#epoch) .. epoch
end
if use_delta then
    message = "d" .. varint(#prev) .. prev .. message
else
    message = "p" .. message
end
redis.call(ARGV[10], ARGV[12], message)

if ARGV[6] ~= "0" then
    redis.call("hset", result_key, "o", offset, "e", epoch)
    redis.call("pexpire", result_key, ARGV[6])
end
return {offset, epoch, 0}
