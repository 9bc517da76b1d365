"""Test doubles that are real implementations: a Transport that records what the node writes."""

from __future__ import annotations

import asyncio

import orjson
from google.protobuf.json_format import MessageToDict

from rotary.node.client import Client
from rotary.node.node import Node
from rotary.protocol import codes, pb
from rotary.protocol.codec import ProtocolType
from rotary.protocol.framing import ws_frame


class RecordingTransport:
    """A Transport that keeps what it is given, framed the way the WebSocket transport frames."""

    name = "websocket"
    unidirectional = False

    def __init__(self, protocol: ProtocolType = ProtocolType.JSON, limit_buffered: int = 0) -> None:
        self.protocol = protocol
        self.framing = "ws-binary" if protocol is ProtocolType.PROTOBUF else "ws-text"
        self.frames: list[bytes] = []
        self.closed_with: codes.Disconnect | None = None
        self.aborted = False
        self._buffered = limit_buffered

    def frame(self, payload: bytes) -> bytes:
        return ws_frame(payload, self.protocol is ProtocolType.PROTOBUF)

    def write(self, payload: bytes) -> None:
        self.frames.append(self.frame(payload))

    def write_prepared(self, frame: bytes) -> int:
        self.frames.append(frame)
        return self._buffered

    def close(self, disconnect: codes.Disconnect) -> int:
        self.closed_with = disconnect
        return 0

    def abort(self) -> None:
        self.aborted = True


async def connected(node: Node, transport: RecordingTransport, channel: str) -> Client:
    """A client that connected and subscribed to ``channel``, with its recorded frames cleared."""
    client = Client(node, transport)
    await client.handle_frame(_connect(transport.protocol))
    await client.handle_frame(_subscribe(transport.protocol, channel))
    transport.frames.clear()
    return client


def _connect(protocol: ProtocolType) -> bytes:
    return _encode_command(protocol, pb.Command(id=1, connect=pb.ConnectRequest()))


def _subscribe(protocol: ProtocolType, channel: str) -> bytes:
    return _encode_command(protocol, pb.Command(id=2, subscribe=pb.SubscribeRequest(channel=channel)))


def _encode_command(protocol: ProtocolType, command: pb.Command) -> bytes:
    if protocol is ProtocolType.JSON:
        return orjson.dumps(MessageToDict(command, preserving_proto_field_name=True))
    body = command.SerializeToString()
    return bytes([len(body)]) + body


def frame_payload(frame: bytes) -> bytes:
    """The payload of one unmasked server frame built by rotary.protocol.framing."""
    length = frame[1] & 0x7F
    if length == 126:
        return frame[4:]
    if length == 127:
        return frame[10:]
    return frame[2:]


def json_messages(transport: RecordingTransport) -> list[dict[str, object]]:
    """Every JSON reply or push the transport received, in order."""
    out: list[dict[str, object]] = []
    for frame in transport.frames:
        for line in frame_payload(frame).split(b"\n"):
            out.append(orjson.loads(line))
    return out


async def send(client: Client, command: pb.Command) -> None:
    await client.handle_frame(_encode_command(client.transport.protocol, command))


async def settled(node: Node) -> None:
    """Waits until the node's background work (join/leave, presence, engine subscriptions) is done
    and the hub delivered what it queued: by completion, not by a timing margin."""
    while node._tasks:
        await asyncio.wait(list(node._tasks))
    await asyncio.sleep(0)
