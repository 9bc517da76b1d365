"""rotary: Centrifugo's real-time protocols as a server and as an asyncio library.

The public API is what this module exports (``__all__``), ``rotary.mount`` and ``rotary.testing``;
every other module is private. It follows semantic versioning (CHANGELOG.md). Guide: docs/embedding.md.
"""

from rotary._version import __version__
from rotary.embed.data import ClientInfo, History, Publication
from rotary.embed.engines import Engine, MemoryEngine, NatsEngine, RedisEngine
from rotary.embed.errors import (
    BadRequest,
    ClientError,
    Disconnect,
    Expired,
    LimitExceeded,
    MethodNotFound,
    NotAvailable,
    PermissionDenied,
    TokenExpired,
    TooManyRequests,
    Unauthorized,
    UnknownChannel,
)
from rotary.embed.events import (
    ChannelOptions,
    ClientEvent,
    ConnectEvent,
    ConnectingEvent,
    ConnectReply,
    DisconnectEvent,
    HistoryEvent,
    PresenceEvent,
    PublishEvent,
    PublishReply,
    RefreshEvent,
    RefreshReply,
    RPCEvent,
    SubRefreshEvent,
    SubRefreshReply,
    SubscribeEvent,
    SubscribeReply,
)
from rotary.embed.node import Node
from rotary.engines.base import PresenceStats, PublishResult, StreamPosition
from rotary.node.node import NodeInfo

__all__ = [
    "BadRequest",
    "ChannelOptions",
    "ClientError",
    "ClientEvent",
    "ClientInfo",
    "ConnectEvent",
    "ConnectReply",
    "ConnectingEvent",
    "Disconnect",
    "DisconnectEvent",
    "Engine",
    "Expired",
    "History",
    "HistoryEvent",
    "LimitExceeded",
    "MemoryEngine",
    "MethodNotFound",
    "NatsEngine",
    "Node",
    "NodeInfo",
    "NotAvailable",
    "PermissionDenied",
    "PresenceEvent",
    "PresenceStats",
    "Publication",
    "PublishEvent",
    "PublishReply",
    "PublishResult",
    "RPCEvent",
    "RedisEngine",
    "RefreshEvent",
    "RefreshReply",
    "StreamPosition",
    "SubRefreshEvent",
    "SubRefreshReply",
    "SubscribeEvent",
    "SubscribeReply",
    "TokenExpired",
    "TooManyRequests",
    "Unauthorized",
    "UnknownChannel",
    "__version__",
]
