"""Requests, results and errors of the server API, and the METHODS table that drives its adapters.

The shapes are Centrifugo's (https://centrifugal.dev/docs/server/server_api): field names are the
JSON keys, ``bytes`` fields carry raw JSON (``data``, ``info``, ``params``), and result fields marked
with :func:`kept` are written even when zero, because Centrifugo's encoder does so and clients rely
on them (``{"num_clients": 0}``, ``{"publications": []}``). Every other zero value is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

INT32: Final = (-(2**31), 2**31 - 1)
INT64: Final = (-(2**63), 2**63 - 1)
UINT32: Final = (0, 2**32 - 1)
UINT64: Final = (0, 2**64 - 1)


def ranged(bounds: tuple[int, int]) -> Any:
    """An integer field that accepts only values within ``bounds`` (the proto field's type)."""
    return field(default=0, metadata={"range": bounds})


def kept(default: Any = None, *, factory: Any = None) -> Any:
    """A result field written even when it holds its zero value."""
    if factory is not None:
        return field(default_factory=factory, metadata={"keep": True})
    return field(default=default, metadata={"keep": True})


# --- errors ----------------------------------------------------------------------------------------

API_ERROR_MESSAGES: Final[dict[int, str]] = {
    100: "internal server error",
    102: "unknown channel",
    104: "not found",
    107: "bad request",
    108: "not available",
    112: "unrecoverable position",
    113: "conflict",
}
"""The server API's own error table; 104 reads "not found" here, unlike the client protocol."""

INTERNAL: Final = 100
UNKNOWN_CHANNEL: Final = 102
NOT_FOUND: Final = 104
BAD_REQUEST: Final = 107
NOT_AVAILABLE: Final = 108
UNRECOVERABLE_POSITION: Final = 112


class ApiError(Exception):
    """A method failed; the reply carries ``{"code": ..., "message": ...}`` instead of a result."""

    def __init__(self, code: int, message: str = "") -> None:
        self.code = code
        self.message = message or API_ERROR_MESSAGES.get(code, "internal server error")
        super().__init__(f"{self.code}: {self.message}")


# --- shared pieces ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamPosition:
    offset: int = ranged(UINT64)
    epoch: str = ""


@dataclass(frozen=True, slots=True)
class BoolValue:
    value: bool = False


@dataclass(frozen=True, slots=True)
class SubscribeOptionOverride:
    """Namespace options one API subscription replaces; an absent field keeps the namespace's."""

    presence: BoolValue | None = None
    join_leave: BoolValue | None = None
    force_recovery: BoolValue | None = None
    force_positioning: BoolValue | None = None
    force_push_join_leave: BoolValue | None = None


@dataclass(frozen=True, slots=True)
class Disconnect:
    code: int = ranged(UINT32)
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ClientInfo:
    user: str = kept("")
    client: str = kept("")
    conn_info: bytes = b""
    chan_info: bytes = b""


# --- requests --------------------------------------------------------------------------------------
#
# Not frozen: the HTTP adapter decodes one per call, and a frozen dataclass sets each field through
# ``object.__setattr__`` (a publish request cost 15k instructions to build, 4k now). Nothing changes
# a request once it is decoded. The pieces they hold (positions, overrides) stay frozen.


@dataclass(slots=True)
class PublishRequest:
    channel: str = ""
    data: bytes = b""
    b64data: str = ""
    skip_history: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    idempotency_key: str = ""
    delta: bool = False
    version: int = ranged(UINT64)
    version_epoch: str = ""


@dataclass(slots=True)
class BroadcastRequest:
    channels: list[str] = field(default_factory=list)
    data: bytes = b""
    b64data: str = ""
    skip_history: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    idempotency_key: str = ""
    delta: bool = False
    version: int = ranged(UINT64)
    version_epoch: str = ""


@dataclass(slots=True)
class SubscribeRequest:
    channel: str = ""
    user: str = ""
    expire_at: int = ranged(INT64)
    info: bytes = b""
    b64info: str = ""
    client: str = ""
    data: bytes = b""
    b64data: str = ""
    recover_since: StreamPosition | None = None
    override: SubscribeOptionOverride | None = None
    session: str = ""


@dataclass(slots=True)
class UnsubscribeRequest:
    channel: str = ""
    user: str = ""
    client: str = ""
    session: str = ""


@dataclass(slots=True)
class DisconnectRequest:
    user: str = ""
    disconnect: Disconnect | None = None
    client: str = ""
    whitelist: list[str] = field(default_factory=list)
    session: str = ""


@dataclass(slots=True)
class RefreshRequest:
    user: str = ""
    client: str = ""
    expired: bool = False
    expire_at: int = ranged(INT64)
    info: bytes = b""
    session: str = ""


@dataclass(slots=True)
class PresenceRequest:
    channel: str = ""


@dataclass(slots=True)
class PresenceStatsRequest:
    channel: str = ""


@dataclass(slots=True)
class HistoryRequest:
    channel: str = ""
    limit: int = ranged(INT32)
    since: StreamPosition | None = None
    reverse: bool = False


@dataclass(slots=True)
class HistoryRemoveRequest:
    channel: str = ""


@dataclass(slots=True)
class InfoRequest:
    pass


@dataclass(slots=True)
class RPCRequest:
    method: str = ""
    params: bytes = b""


@dataclass(slots=True)
class ChannelsRequest:
    pattern: str = ""


@dataclass(slots=True)
class MapPublishRequest:
    channel: str = ""
    key: str = ""
    data: bytes = b""
    b64data: str = ""
    stream_data: bytes = b""
    b64stream_data: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    idempotency_key: str = ""
    delta: bool = False
    version: int = ranged(UINT64)
    version_epoch: str = ""
    score: int = ranged(INT64)
    key_mode: str = ""


@dataclass(slots=True)
class MapRemoveRequest:
    channel: str = ""
    key: str = ""
    idempotency_key: str = ""


@dataclass(slots=True)
class MapReadStateRequest:
    channel: str = ""
    cursor: str = ""
    limit: int = ranged(INT32)
    key: str = ""
    asc: bool = False
    revision_offset: int = ranged(UINT64)
    revision_epoch: str = ""


@dataclass(slots=True)
class MapReadStreamRequest:
    channel: str = ""
    since_offset: int = ranged(UINT64)
    since_epoch: str = ""
    limit: int = ranged(INT32)
    reverse: bool = False


@dataclass(slots=True)
class MapStatsRequest:
    channel: str = ""


@dataclass(slots=True)
class MapClearRequest:
    channel: str = ""


@dataclass(slots=True)
class SharedPollPublishRequest:
    channel: str = ""
    key: str = ""
    data: bytes = b""
    b64data: str = ""
    version: int = ranged(UINT64)
    epoch: str = ""


@dataclass(frozen=True, slots=True)
class Command:
    """One command of a batch: the method named by its only key, or none when no key names one."""

    method: str = ""
    request: Any = None


@dataclass(slots=True)
class BatchRequest:
    commands: list[Command | None] = field(default_factory=list)
    """A JSON ``null`` element stays None and is answered with 107."""
    parallel: bool = False


# --- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PublishResult:
    offset: int = 0
    epoch: str = ""
    """Both stay zero (and out of the JSON) when the channel keeps no history."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result or the error of one item of a broadcast or a batch."""

    result: Any = None
    error: ApiError | None = None


@dataclass(frozen=True, slots=True)
class BroadcastResult:
    responses: list[Outcome] = field(default_factory=list)
    """One per requested channel, in request order."""


@dataclass(frozen=True, slots=True)
class EmptyResult:
    """The result of methods that only report success: subscribe, unsubscribe, disconnect, ..."""


@dataclass(frozen=True, slots=True)
class PresenceResult:
    presence: dict[str, ClientInfo] = kept(factory=dict)


@dataclass(frozen=True, slots=True)
class PresenceStatsResult:
    num_clients: int = kept(0)
    num_users: int = kept(0)


@dataclass(frozen=True, slots=True)
class Publication:
    data: bytes = b""
    info: ClientInfo | None = None
    offset: int = 0
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HistoryResult:
    publications: list[Publication] = kept(factory=list)
    epoch: str = kept("")
    offset: int = kept(0)


@dataclass(frozen=True, slots=True)
class NodeResult:
    uid: str = kept("")
    name: str = kept("")
    version: str = kept("")
    num_clients: int = kept(0)
    num_users: int = kept(0)
    num_channels: int = kept(0)
    uptime: int = 0
    num_subs: int = kept(0)


@dataclass(frozen=True, slots=True)
class InfoResult:
    nodes: list[NodeResult] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RPCResult:
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    num_clients: int = 0


@dataclass(frozen=True, slots=True)
class ChannelsResult:
    channels: dict[str, ChannelInfo] = kept(factory=dict)


@dataclass(frozen=True, slots=True)
class BatchReply:
    """A batch item: its result under the method's name when it succeeded, else ``error``."""

    method: str
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class BatchResult:
    replies: list[BatchReply] = field(default_factory=list)
    """One per command, in command order."""


# --- the table -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """One API method: its request type and its number on the legacy ``/api`` route."""

    name: str
    request: type[Any]
    legacy_number: int | None
    """``Command.MethodType`` of the legacy route; None where that route has no such method."""
    enveloped: bool = True
    """The response wraps the result as ``{"result": ...}``; batch answers ``{"replies": [...]}`` bare."""


METHODS: Final[dict[str, MethodSpec]] = {
    spec.name: spec
    for spec in (
        MethodSpec("publish", PublishRequest, 0),
        MethodSpec("broadcast", BroadcastRequest, 1),
        MethodSpec("subscribe", SubscribeRequest, 11),
        MethodSpec("unsubscribe", UnsubscribeRequest, 2),
        MethodSpec("disconnect", DisconnectRequest, 3),
        MethodSpec("history", HistoryRequest, 6),
        MethodSpec("history_remove", HistoryRemoveRequest, 7),
        MethodSpec("presence", PresenceRequest, 4),
        MethodSpec("presence_stats", PresenceStatsRequest, 5),
        MethodSpec("info", InfoRequest, 9),
        MethodSpec("rpc", RPCRequest, 10),
        MethodSpec("refresh", RefreshRequest, 12),
        MethodSpec("channels", ChannelsRequest, 8),
        MethodSpec("map_publish", MapPublishRequest, 33),
        MethodSpec("map_remove", MapRemoveRequest, 34),
        MethodSpec("map_read_state", MapReadStateRequest, 35),
        MethodSpec("map_read_stream", MapReadStreamRequest, 36),
        MethodSpec("map_stats", MapStatsRequest, 37),
        MethodSpec("map_clear", MapClearRequest, 38),
        MethodSpec("shared_poll_publish", SharedPollPublishRequest, 39),
        MethodSpec("batch", BatchRequest, None, enveloped=False),
    )
}
"""Every method rotary serves, in the order a batch command with several keys is resolved."""

BATCH_METHODS: Final = tuple(name for name in METHODS if name != "batch")

LEGACY_NUMBERS: Final[dict[int, str]] = {
    spec.legacy_number: name for name, spec in METHODS.items() if spec.legacy_number is not None
}

LEGACY_UNSERVED: Final[dict[str, int]] = {
    "CONNECTIONS": 14,
    "UPDATE_USER_STATUS": 15,
    "GET_USER_STATUS": 16,
    "DELETE_USER_STATUS": 17,
    "BLOCK_USER": 18,
    "UNBLOCK_USER": 19,
    "REVOKE_TOKEN": 20,
    "INVALIDATE_USER_TOKENS": 21,
    "DEVICE_REGISTER": 22,
    "DEVICE_UPDATE": 23,
    "DEVICE_REMOVE": 24,
    "DEVICE_LIST": 25,
    "DEVICE_TOPIC_LIST": 26,
    "DEVICE_TOPIC_UPDATE": 27,
    "USER_TOPIC_LIST": 28,
    "USER_TOPIC_UPDATE": 29,
    "SEND_PUSH_NOTIFICATION": 30,
    "UPDATE_PUSH_STATUS": 31,
    "CANCEL_PUSH": 32,
}
"""Legacy method names of Centrifugo PRO: they parse, and the open-source server answers 104."""
