"""The WebSocket mount's writes straight to uvicorn's socket, when that changes nothing but the cost.

Why: the ASGI contract hands the server one ``websocket.send`` message per connection, and the
server frames it for each connection. Under uvicorn that is websockets' ``Frame.serialize`` and the
checks around it, in Python, for every connection and message: about as much CPU as the whole
delivery of the standalone server (bench/README.md, "The ASGI mount under uvicorn"). rotary already
has the frame, encoded and framed once per channel and protocol by the hub; the standalone server
writes those bytes to each socket. This writes the same bytes to uvicorn's transport.

What it relies on, read in uvicorn 0.55's ``websockets_sansio_impl.py`` and websockets 17's
``protocol.py``: for an open connection, ``WebSocketsSansIOProtocol.send`` of a ``websocket.send``
message awaits ``writable`` (set unless the transport paused writing), raises if ``disconnected``,
does nothing more once ``close_sent``, else calls ``conn.send_text``/``send_binary``, which check
``conn.state`` is OPEN and no fragmented message is open, then serialize one final unmasked frame
through ``conn.extensions`` into ``conn.writes``; ``send`` writes ``conn.data_to_send()`` to
``transport``. Nothing else changes: no counter, no timer (uvicorn's keepalive pings are on their
own timer and written whole, so frames never interleave), only websockets' debug log of the frame.
With no extension negotiated (no permessage-deflate) the serialized frame is byte for byte
rotary's (tests/unit/protocol/test_ws_framing.py). So :meth:`UvicornSocket.write` writes only when
all of that holds and nothing waits in ``conn.writes``; otherwise the mount falls back to ``send``.

The protocol is found as ``send.__self__``, through the pass-through wrappers Starlette puts around
``send`` for WebSocket scopes (FastAPI's included): their ``websocket.send`` and ``websocket.close``
go to the inner ``send`` unchanged. Any other wrapper, another uvicorn WebSocket implementation,
another server, or a class or attribute that is not what was read: no shortcut, plain ASGI.
uvicorn is not a dependency of rotary and is imported only when the ``send`` is from its module.
"""

from __future__ import annotations

import asyncio
import sys
import types
from typing import Any

from rotary.transports.mounts.asgi_send import Send

_SANSIO_MODULE = "uvicorn.protocols.websockets.websockets_sansio_impl"

_PASS_THROUGH = frozenset(
    {
        # starlette/_exception_handler.py: ExceptionMiddleware's wrapper; notes http.response.start.
        ("starlette._exception_handler", "wrap_app_handling_exceptions.<locals>.wrapped_app.<locals>.sender"),
        # starlette/middleware/sessions.py: adds the cookie to http.response.start only.
        ("starlette.middleware.sessions", "SessionMiddleware.__call__.<locals>.send_wrapper"),
    }
)
"""(module, qualified name) of ``send`` wrappers that pass every WebSocket message on unchanged."""

_MAX_WRAPPERS = 8


class UvicornSocket:
    """An open, uncompressed WebSocket connection of uvicorn's ``websockets-sansio`` implementation."""

    __slots__ = ("_conn", "_open", "_protocol", "_writable", "transport")

    def __init__(self, protocol: Any, open_state: object) -> None:
        self._protocol = protocol
        self._conn = protocol.conn
        self.transport: asyncio.WriteTransport = protocol.transport
        """uvicorn's transport of the connection (its buffer is what waits beyond the mount's)."""
        self._writable: asyncio.Event = protocol.writable
        self._open = open_state

    def write(self, frame: bytes) -> bool:
        """Writes a final unmasked data frame if ``send`` would write exactly it now; else False."""
        protocol, conn = self._protocol, self._conn
        if (
            self._writable.is_set()
            and not protocol.close_sent
            and not protocol.disconnected
            and conn.state is self._open
            and not conn.writes
            and not conn.expect_continuation_frame
            and not self.transport.is_closing()
        ):
            self.transport.write(frame)
            return True
        return False


def uvicorn_socket(send: Send) -> UvicornSocket | None:
    """The shortcut for the connection behind ``send``, accepted a moment ago; None for plain ASGI."""
    protocol = _protocol_of(send)
    if protocol is None:
        return None
    try:
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
        from websockets.protocol import OPEN
        from websockets.server import ServerProtocol
    except ImportError:  # pragma: no cover - the send came from this module, so it imports
        return None
    if type(protocol) is not WebSocketsSansIOProtocol or not _plainly_open(protocol, ServerProtocol, OPEN):
        return None
    return UvicornSocket(protocol, OPEN)


def _protocol_of(send: Send) -> object | None:
    """The object ``send`` is a bound ``send`` method of, past Starlette's pass-through wrappers."""
    for _ in range(_MAX_WRAPPERS):
        if isinstance(send, types.MethodType):
            inner = send.__self__
            module = type(inner).__module__
            if module == _SANSIO_MODULE and module in sys.modules and send.__func__ is _sansio_send():
                return inner
            return None
        if not isinstance(send, types.FunctionType):
            return None
        if (send.__module__, send.__qualname__) not in _PASS_THROUGH:
            return None
        wrapped = _free_variable(send, "send")
        if wrapped is None:
            return None
        send = wrapped
    return None


def _sansio_send() -> object:
    return sys.modules[_SANSIO_MODULE].WebSocketsSansIOProtocol.send


def _free_variable(function: types.FunctionType, name: str) -> Any:
    code, closure = function.__code__, function.__closure__
    if closure is None or name not in code.co_freevars:
        return None
    try:
        return closure[code.co_freevars.index(name)].cell_contents
    except ValueError:  # an empty cell
        return None


def _plainly_open(protocol: Any, server_protocol: type, open_state: object) -> bool:
    """Accepted, open, no extension (no permessage-deflate), nothing unsent, attributes as read."""
    conn = getattr(protocol, "conn", None)
    transport: Any = getattr(protocol, "transport", None)
    return (
        type(conn) is server_protocol
        and isinstance(getattr(protocol, "writable", None), asyncio.Event)
        and callable(getattr(transport, "write", None))
        and callable(getattr(transport, "is_closing", None))
        and getattr(protocol, "handshake_complete", None) is True
        and getattr(protocol, "initial_response", 0) is None
        and getattr(protocol, "close_sent", None) is False
        and getattr(protocol, "disconnected", None) is False
        and getattr(conn, "state", None) is open_state
        and getattr(conn, "extensions", None) == []
        and getattr(conn, "writes", None) == []
        and getattr(conn, "expect_continuation_frame", None) is False
        and not transport.is_closing()
    )
