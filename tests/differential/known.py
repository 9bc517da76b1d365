"""Differences from Centrifugo that rotary must still fix in code the lead owns (node, session,
protocol, transports, engines): scenarios showing them are xfail(strict) with one of these reasons,
so that the fix turns them into failures to un-mark."""

PUB_FIELDS = (
    "Centrifugo sets `epoch` on the publication with offset 1 of a stream (pushes, history, "
    "recovery; not on the JSON string form of a delta-capable channel) and no `time`; rotary sets "
    "`time` (wall clock ms, engines/memory.py) on every publication and never `epoch`"
)
WAS_RECOVERING = (
    "a subscribe with `recover: true` gets `was_recovering: true` in Centrifugo even when the "
    "subscription is not recoverable (no `recoverable: true`, or no history); rotary answers `{}`"
)
REFRESH = (
    "the refresh reply: Centrifugo {expires, ttl}; rotary adds `client` and `version`, which "
    "Centrifugo sends only in the connect reply"
)
INFO_METRICS = (
    "the info result: Centrifugo's node has `metrics` ({interval: 60, items: {...}}, a snapshot of "
    "its counters); rotary's node has none (node/cluster.py builds the node info)"
)
CHANNELS_BRACES = (
    "the channels pattern `chat:{cb1,zz}` matches chat:cb1 in Centrifugo (gobwas glob alternatives); "
    "rotary's hub matches with fnmatch, which has no `{a,b}` (node/hub.py)"
)
