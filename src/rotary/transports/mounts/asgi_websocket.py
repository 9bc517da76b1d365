"""The bidirectional WebSocket over ASGI: one connection per ``websocket`` scope.

The ASGI server does the handshake, the framing and permessage-deflate; rotary hands it whole
messages. A group's prepared frame is the WebSocket frame the standalone server writes (``frame``
is :func:`ws_frame`); under uvicorn's ``websockets-sansio`` with no deflate those bytes go straight
to its socket (asgi_uvicorn.py). Otherwise the frame's ASGI message (its payload, as text for
JSON) is built once per frame for the whole endpoint (:class:`MessageCache`), so fan-out stays one
encode per group, and the server frames the message again for each connection, which is where the
mount's extra cost per delivery goes (bench/README.md). The connection's own ASGI coroutine
reads; writes go through :class:`AsgiSender` without a task. Protobuf is chosen as in
transports/websocket.py (https://centrifugal.dev/docs/transports/websocket).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

from rotary.node.client import Client
from rotary.node.node import Node
from rotary.protocol import codes
from rotary.protocol.codec import ProtocolType, codec_for
from rotary.protocol.framing import ws_frame, ws_frame_payload
from rotary.transports.mounts.asgi_send import AsgiSender, Message, Receive, Scope, Send
from rotary.transports.mounts.asgi_uvicorn import uvicorn_socket
from rotary.transports.stalled import drop_if_stalled
from rotary.transports.websocket import (
    DEFAULT_MESSAGE_SIZE_LIMIT,
    DEFAULT_WRITE_TIMEOUT,
    SUBPROTOCOL_JSON,
    SUBPROTOCOL_PROTOBUF,
)

MESSAGE_TOO_BIG = 1009
"""The WebSocket close code for a client message over ``message_size_limit``, as aiohttp sends it."""


class MessageCache:
    """The ASGI message of the frame last seen, shared by every connection of an endpoint.

    The hub writes one frame object to each connection of a group in a row, so only the first
    builds the message (the frame's payload, decoded for JSON to the text ASGI wants); ASGI servers
    read a message and do not change it. The frame is held, so its identity cannot be taken by
    another object meanwhile.
    """

    __slots__ = ("_binary", "_frame", "_message")

    def __init__(self, binary: bool) -> None:
        self._binary = binary
        self._frame = b""
        self._message: Message = {}

    def message(self, frame: bytes) -> Message:
        if frame is not self._frame:
            payload = ws_frame_payload(frame)
            if self._binary:
                self._message = {"type": "websocket.send", "bytes": payload}
            else:
                self._message = {"type": "websocket.send", "text": payload.decode()}
            self._frame = frame
        return self._message


class SharedMessages:
    """An endpoint's caches: one per protocol, since JSON and Protobuf groups alternate in a fan-out."""

    def __init__(self) -> None:
        self.text = MessageCache(binary=False)
        self.binary = MessageCache(binary=True)


class AsgiWebSocketTransport:
    """Writes to one ASGI WebSocket connection."""

    name = "websocket"
    unidirectional = False
    write_prepared: Callable[[bytes], int]

    def __init__(
        self,
        send: Send,
        protocol: ProtocolType,
        shared: SharedMessages,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT,
    ) -> None:
        self.protocol = protocol
        self._write_timeout = write_timeout
        binary = protocol is ProtocolType.PROTOBUF
        self.framing = "asgi-ws-binary" if binary else "asgi-ws-text"
        self._binary = binary
        message_of = shared.binary.message if binary else shared.text.message
        join = codec_for(protocol).join

        def join_frames(frames: list[bytes]) -> bytes:
            return ws_frame(join([ws_frame_payload(frame) for frame in frames]), binary)

        self.direct = uvicorn_socket(send)
        """The shortcut past uvicorn's ``send``, or None: plain ASGI."""
        self.sender = AsgiSender(
            send, message_of, join_frames, None if self.direct is None else self.direct.write
        )
        # The fan-out calls this once per subscriber: the sender's own method, with no call of this
        # class's in between.
        self.write_prepared = self.sender.write_counted

    def frame(self, payload: bytes) -> bytes:
        return ws_frame(payload, self._binary)

    def write(self, payload: bytes) -> None:
        self.sender.write(ws_frame(payload, self._binary))

    def close(self, disconnect: codes.Disconnect) -> int:
        """Says goodbye with a close frame, never a disconnect push (returns 0)."""
        reason = disconnect.reason.encode()[:123].decode(errors="ignore")
        message = {"type": "websocket.close", "code": disconnect.code, "reason": reason}
        self.sender.end(message, drop_pending=disconnect.code == codes.DISCONNECT_SLOW.code)
        # A peer that stopped reading never takes the close: its send is cancelled after the write
        # timeout, and the ASGI server ends the connection in its own time.
        drop_if_stalled(self.sender, self._write_timeout)
        return 0

    def abort(self) -> None:
        self.sender.abort()


@dataclass(frozen=True, slots=True)
class WebSocketOptions:
    message_size_limit: int = DEFAULT_MESSAGE_SIZE_LIMIT
    write_timeout: float = DEFAULT_WRITE_TIMEOUT


def _subprotocol(scope: Scope) -> str | None:
    """The first subprotocol the client offers that rotary speaks, as aiohttp chooses it."""
    for offered in scope.get("subprotocols") or ():
        if offered in (SUBPROTOCOL_JSON, SUBPROTOCOL_PROTOBUF):
            return str(offered)
    return None


def _protocol_of(scope: Scope, subprotocol: str | None) -> ProtocolType:
    if subprotocol == SUBPROTOCOL_PROTOBUF:
        return ProtocolType.PROTOBUF
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if "protobuf" in (query.get("cf_protocol", [""])[0], query.get("format", [""])[0]):
        return ProtocolType.PROTOBUF
    return ProtocolType.JSON


async def serve_websocket(
    scope: Scope,
    receive: Receive,
    send: Send,
    node: Node,
    options: WebSocketOptions,
    shared: SharedMessages,
    headers: Mapping[str, str],
) -> None:
    """Runs one accepted-to-be connection; the caller has passed the origin and admission checks."""
    subprotocol = _subprotocol(scope)
    await send({"type": "websocket.accept", "subprotocol": subprotocol})
    transport = AsgiWebSocketTransport(send, _protocol_of(scope, subprotocol), shared, options.write_timeout)
    client_address = scope.get("client")
    client = Client(node, transport, headers, client_address[0] if client_address else "")
    client.request = scope
    limit = options.message_size_limit
    try:
        while not client.closed:
            message = await receive()
            if message["type"] != "websocket.receive":
                transport.sender.abort()  # websocket.disconnect: nothing more can be sent
                break
            data = message.get("bytes")
            if data is None:
                data = (message.get("text") or "").encode()
            if limit and len(data) > limit:
                transport.close(codes.Disconnect(MESSAGE_TOO_BIG, "message too big"))
                break
            await client.handle_frame(data)
    finally:
        client.close(codes.DISCONNECT_CONNECTION_CLOSED)
        await _drained(transport.sender, options.write_timeout)


async def _drained(sender: AsgiSender, timeout: float) -> None:
    """Waits for the close message to go out, aborting a peer that does not take it in time."""
    try:
        async with asyncio.timeout(timeout):
            await sender.drained()
    except TimeoutError:
        sender.abort()
