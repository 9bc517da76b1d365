"""An in-process client speaking Centrifugo's client protocol to a Node, for tests without sockets.

It encodes real commands (JSON or Protobuf) and feeds them to the node's connection driver through
an in-memory Transport, then decodes the node's real replies and pushes: what a hook sees and what
an SDK would receive are exactly what a WebSocket connection gives, minus the socket. See
https://centrifugal.dev/docs/transports/client_protocol for the commands.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from rotary.embed.data import ClientInfo, History, Publication, client_info, decode, encode, publication
from rotary.embed.errors import Disconnect, error_for
from rotary.engines.base import PresenceStats, StreamPosition
from rotary.node.client import Client
from rotary.node.node import Node
from rotary.protocol import codes, pb
from rotary.protocol.codec import ProtocolType, codec_for

DEFAULT_TIMEOUT = 10.0
"""Seconds a test waits for a push before failing: generous, as the node is in the same process."""


@dataclass(frozen=True, slots=True)
class Connected:
    """The connect result."""

    client_id: str
    data: Any
    expires: bool
    ttl: int
    subscriptions: tuple[str, ...]
    """Server-side subscriptions made at connect."""


@dataclass(frozen=True, slots=True)
class Subscribed:
    """The subscribe result (or a server-side subscription's)."""

    data: Any
    expires: bool = False
    ttl: int = 0
    recoverable: bool = False
    positioned: bool = False
    position: StreamPosition | None = None
    was_recovering: bool = False
    recovered: bool = False
    publications: list[Publication] = field(default_factory=list)
    """Publications recovered at subscribe."""


@dataclass(frozen=True, slots=True)
class Push:
    """A message the server sent without a command: ``kind`` is the push's name in the protocol
    ("publication", "join", "leave", "unsubscribe", "subscribe", "message", "refresh",
    "disconnect")."""

    kind: str
    channel: str
    publication: Publication | None = None
    info: ClientInfo | None = None
    """The client that joined or left."""
    code: int = 0
    """Unsubscribe or disconnect code."""
    reason: str = ""
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Closed:
    """How the server ended the connection."""

    code: int
    reason: str


class _MemoryTransport:
    """rotary.node.transport.Transport writing to a TestClient instead of a socket."""

    unidirectional = False

    def __init__(self, owner: TestClient, name: str, protocol: ProtocolType) -> None:
        self.name = name
        self.protocol = protocol
        self.framing = "memory"
        self._owner = owner

    def frame(self, payload: bytes) -> bytes:
        return payload

    def write(self, payload: bytes) -> None:
        self._owner._received(payload)

    def write_prepared(self, frame: bytes) -> int:
        self._owner._received(frame)
        return 0

    def close(self, disconnect: codes.Disconnect) -> int:
        """Hands the test the close code itself; no disconnect push is written (returns 0)."""
        self._owner._closed(Closed(disconnect.code, disconnect.reason))
        return 0

    def abort(self) -> None:
        self._owner._closed(Closed(codes.DISCONNECT_CONNECTION_CLOSED.code, "aborted"))


class TestClient:
    """A client connected to ``node`` in this process, as a WebSocket client would be.

    ``async with TestClient(node, token=..., data=..., headers=...) as client:`` connects (raising
    :class:`rotary.ClientError` or :class:`rotary.Disconnect` when refused) and disconnects at the
    end. Commands raise :class:`rotary.ClientError` for an error reply and :class:`rotary.Disconnect`
    once the server closed the connection.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        node: Node,
        *,
        token: str = "",
        data: object = None,
        headers: Mapping[str, str] | None = None,
        emulated_headers: Mapping[str, str] | None = None,
        name: str = "",
        version: str = "",
        protocol: Literal["json", "protobuf"] = "json",
        transport: str = "websocket",
        remote: str = "",
        request: object | None = None,
    ) -> None:
        """``headers`` are the HTTP request's; ``emulated_headers`` those a browser SDK sends in its
        connect command. ``data`` is encoded as JSON unless it is bytes. ``request`` is what a mount
        gives hooks as ``ConnectingEvent.request`` (an ASGI scope, an aiohttp request), for hooks
        that read the host application's login from it."""
        self.node = node
        self._protocol = ProtocolType.PROTOBUF if protocol == "protobuf" else ProtocolType.JSON
        self._codec = codec_for(self._protocol)
        self._transport = _MemoryTransport(self, transport, self._protocol)
        self._headers = {key.lower(): value for key, value in (headers or {}).items()}
        self._remote = remote
        self._request = request
        self._connect = pb.ConnectRequest(token=token, data=encode(data), name=name, version=version)
        self._connect.headers.update(emulated_headers or {})
        self._client: Client | None = None
        self._next_id = 0
        self._waiting: dict[int, asyncio.Future[pb.Reply]] = {}
        self._pushes: collections.deque[Push] = collections.deque()
        self._arrived = asyncio.Event()
        self._lock = asyncio.Lock()
        self._pongs: set[asyncio.Task[None]] = set()
        self.closed: Closed | None = None
        """How the server closed the connection, once it did."""
        self.client_id = ""

    async def __aenter__(self) -> TestClient:
        await self.connect()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- commands ------------------------------------------------------------------------------

    async def connect(self) -> Connected:
        if self._client is not None:
            raise RuntimeError("connect once per TestClient")
        self._client = Client(self.node, self._transport, self._headers, self._remote)
        self._client.request = self._request
        try:
            result = (await self._call(pb.Command(connect=self._connect))).connect
        except BaseException:  # a refused client goes away, as an SDK's socket would
            self._client.close(codes.DISCONNECT_CONNECTION_CLOSED)
            raise
        self.client_id = result.client
        return Connected(
            result.client, self._decode(result.data), result.expires, result.ttl, tuple(result.subs)
        )

    async def subscribe(
        self,
        channel: str,
        *,
        token: str = "",
        data: object = None,
        recover_since: StreamPosition | None = None,
        positioned: bool = False,
        recoverable: bool = False,
        join_leave: bool = False,
    ) -> Subscribed:
        """Subscribes; ``recover_since`` asks for the publications after that position."""
        request = pb.SubscribeRequest(
            channel=channel,
            token=token,
            data=encode(data),
            positioned=positioned,
            recoverable=recoverable or recover_since is not None,
            join_leave=join_leave,
        )
        if recover_since is not None:
            request.recover = True
            request.offset, request.epoch = recover_since.offset, recover_since.epoch
        return self._subscribed((await self._call(pb.Command(subscribe=request))).subscribe)

    async def unsubscribe(self, channel: str) -> None:
        await self._call(pb.Command(unsubscribe=pb.UnsubscribeRequest(channel=channel)))

    async def publish(self, channel: str, data: object) -> None:
        await self._call(pb.Command(publish=pb.PublishRequest(channel=channel, data=encode(data))))

    async def rpc(self, method: str, data: object = None) -> Any:
        """The RPC's result data, decoded (JSON value, or bytes over Protobuf)."""
        reply = await self._call(pb.Command(rpc=pb.RPCRequest(method=method, data=encode(data))))
        return self._decode(reply.rpc.data)

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        reply = await self._call(pb.Command(presence=pb.PresenceRequest(channel=channel)))
        return {client: client_info(info) for client, info in reply.presence.presence.items()}

    async def presence_stats(self, channel: str) -> PresenceStats:
        request = pb.PresenceStatsRequest(channel=channel)
        result = (await self._call(pb.Command(presence_stats=request))).presence_stats
        return PresenceStats(result.num_clients, result.num_users)

    async def history(
        self, channel: str, *, limit: int = 0, since: StreamPosition | None = None, reverse: bool = False
    ) -> History:
        request = pb.HistoryRequest(channel=channel, limit=limit, reverse=reverse)
        if since is not None:
            request.since.offset, request.since.epoch = since.offset, since.epoch
        result = (await self._call(pb.Command(history=request))).history
        return History(
            [publication(pub) for pub in result.publications], StreamPosition(result.offset, result.epoch)
        )

    async def refresh(self, token: str) -> int:
        """Sends a new connection token; returns the new TTL in seconds (0: no expiry)."""
        result = (await self._call(pb.Command(refresh=pb.RefreshRequest(token=token)))).refresh
        return result.ttl if result.expires else 0

    async def sub_refresh(self, channel: str, token: str) -> int:
        request = pb.SubRefreshRequest(channel=channel, token=token)
        result = (await self._call(pb.Command(sub_refresh=request))).sub_refresh
        return result.ttl if result.expires else 0

    async def close(self) -> None:
        """Goes away as a client whose socket closed (3000), then waits for the node's background
        work (leave, presence removal, ``on_disconnect``) to finish."""
        for task in self._pongs:
            task.cancel()
        if self._client is not None:
            self._client.close(codes.DISCONNECT_CONNECTION_CLOSED)
        await settled(self.node)

    # -- what the server sends -----------------------------------------------------------------

    async def next_push(
        self, kind: str | None = None, channel: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> Push:
        """The earliest push not taken yet, of this kind and channel if given (others stay queued)."""

        def taken() -> Push | None:
            for push in self._pushes:
                if (kind is None or push.kind == kind) and (channel is None or push.channel == channel):
                    self._pushes.remove(push)
                    return push
            return None

        async with asyncio.timeout(timeout):
            while (push := taken()) is None:
                if self.closed is not None and kind != "disconnect":
                    raise Disconnect(self.closed.code, self.closed.reason)
                self._arrived.clear()
                await self._arrived.wait()
        return push

    async def next_publication(
        self, channel: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> Publication:
        """The earliest publication pushed (to ``channel`` if given) not taken yet."""
        push = await self.next_push("publication", channel, timeout=timeout)
        assert push.publication is not None
        return push.publication

    async def wait_closed(self, *, timeout: float = DEFAULT_TIMEOUT) -> Closed:
        """Waits until the server closes the connection; how it did."""
        async with asyncio.timeout(timeout):
            while self.closed is None:
                self._arrived.clear()
                await self._arrived.wait()
        return self.closed

    def pending(self) -> list[Push]:
        """Pushes received and not taken yet."""
        return list(self._pushes)

    # -- internals -----------------------------------------------------------------------------

    def _decode(self, data: bytes) -> Any:
        return decode(data, self._protocol)

    def _subscribed(self, result: pb.SubscribeResult) -> Subscribed:
        return Subscribed(
            data=self._decode(result.data),
            expires=result.expires,
            ttl=result.ttl,
            recoverable=result.recoverable,
            positioned=result.positioned,
            position=StreamPosition(result.offset, result.epoch) if result.positioned else None,
            was_recovering=result.was_recovering,
            recovered=result.recovered,
            publications=[publication(pub) for pub in result.publications],
        )

    async def _call(self, command: pb.Command) -> pb.Reply:
        if self._client is None:
            raise RuntimeError("not connected: use `async with TestClient(...)` or connect()")
        if self.closed is not None:
            raise Disconnect(self.closed.code, self.closed.reason)
        self._next_id += 1
        command.id = self._next_id
        future: asyncio.Future[pb.Reply] = asyncio.get_running_loop().create_future()
        self._waiting[command.id] = future
        try:
            await self._send(command)
            if not future.done():  # the server closed without answering
                closed = self.closed or Closed(codes.DISCONNECT_CONNECTION_CLOSED.code, "no reply")
                raise Disconnect(closed.code, closed.reason)
            reply = future.result()
        finally:
            self._waiting.pop(command.id, None)
        if reply.HasField("error"):
            error = reply.error
            raise error_for(error.code, error.message, error.temporary)
        return reply

    async def _send(self, command: pb.Command) -> None:
        """One command at a time, as a connection's read loop feeds them."""
        assert self._client is not None
        async with self._lock:
            await self._client.handle_frame(self._codec.encode(command))

    def _received(self, payload: bytes) -> None:
        for reply in self._codec.decode(payload, pb.Reply):
            if reply.id:
                future = self._waiting.get(reply.id)
                if future is not None and not future.done():
                    future.set_result(reply)
            elif reply.HasField("push"):
                self._pushes.append(_push(reply.push))
            else:  # a ping: answer with a pong, as SDKs do
                task = asyncio.get_running_loop().create_task(self._send(pb.Command()))
                self._pongs.add(task)
                task.add_done_callback(self._pongs.discard)
        self._arrived.set()

    def _closed(self, closed: Closed) -> None:
        if self.closed is None:
            self.closed = closed
            self._pushes.append(Push("disconnect", "", code=closed.code, reason=closed.reason))
        self._arrived.set()


_PUSH_KINDS = (
    "pub",
    "join",
    "leave",
    "unsubscribe",
    "message",
    "subscribe",
    "connect",
    "disconnect",
    "refresh",
)


def _push(push: pb.Push) -> Push:
    kind = next((name for name in _PUSH_KINDS if push.HasField(name)), "")
    channel = push.channel
    if kind == "pub":
        return Push("publication", channel, publication=publication(push.pub))
    if kind in ("join", "leave"):
        info = client_info(getattr(push, kind).info)
        return Push(kind, channel, info=info)
    if kind == "unsubscribe":
        return Push(kind, channel, code=push.unsubscribe.code, reason=push.unsubscribe.reason)
    if kind == "disconnect":
        return Push(kind, channel, code=push.disconnect.code, reason=push.disconnect.reason)
    if kind == "message":
        return Push(kind, channel, data=push.message.data)
    if kind == "subscribe":
        return Push(kind, channel, data=push.subscribe.data)
    return Push(kind, channel)


async def settled(node: Node) -> None:
    """Waits until the node's background work (join/leave, presence, ``on_disconnect``) is done."""
    while node._tasks:
        await asyncio.wait(list(node._tasks))
    await asyncio.sleep(0)
