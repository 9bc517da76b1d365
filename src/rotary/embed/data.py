"""Data in and out of the public API as Python values, never protobuf messages.

What an application hands rotary (publication data, connection and channel info, results) is bytes
sent as they are, or any other value encoded as JSON with orjson. What clients send arrives decoded:
the JSON value a JSON-protocol client sent, the bytes a Protobuf-protocol client sent. What rotary
keeps (history, presence) comes back as bytes, since the node cannot know how they were encoded:
``Publication.json()`` decodes the usual case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from rotary.engines.base import StreamPosition
from rotary.protocol import pb
from rotary.protocol.codec import ProtocolType


def encode(value: object) -> bytes:
    """Bytes as they are, None as nothing, anything else as JSON."""
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return orjson.dumps(value)


def decode(data: bytes, protocol: ProtocolType) -> Any:
    """What a client sent: its JSON value (None when it sent none), or its bytes over Protobuf."""
    if protocol is ProtocolType.PROTOBUF:
        return data
    return orjson.loads(data) if data else None


def _json(data: bytes) -> Any:
    return orjson.loads(data) if data else None


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """A connection as presence, join/leave and publications describe it."""

    client_id: str
    user: str
    conn_info: bytes = b""
    """The ``info`` its connect granted, encoded."""
    chan_info: bytes = b""
    """The ``info`` its subscription to the channel granted, encoded."""


@dataclass(frozen=True, slots=True)
class Publication:
    """One publication of a channel's history (or pushed to a test client)."""

    data: bytes
    offset: int = 0
    """Its place in the channel's stream; 0 when the channel keeps no history."""
    tags: Mapping[str, str] = field(default_factory=dict)
    info: ClientInfo | None = None
    """The publishing client, when a client published it."""

    def json(self) -> Any:
        """The data decoded as JSON (None when empty)."""
        return _json(self.data)


@dataclass(frozen=True, slots=True)
class History:
    """A read of a channel's history: publications and where the stream stands."""

    publications: list[Publication]
    position: StreamPosition


def client_info(info: pb.ClientInfo) -> ClientInfo:
    return ClientInfo(info.client, info.user, info.conn_info, info.chan_info)


def publication(pub: pb.Publication) -> Publication:
    info = client_info(pub.info) if pub.HasField("info") else None
    return Publication(pub.data, pub.offset, dict(pub.tags), info)
