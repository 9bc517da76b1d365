"""Synchronous, non-blocking writes over an ASGI ``send``.

The node writes prepared bytes synchronously (node/transport.py), and an ASGI server takes messages
only through the awaitable ``send``. An ASGI server's send of a WebSocket message or a body chunk
finishes without suspending whenever its socket's buffer has room (it writes to the asyncio
transport and returns), so :class:`AsgiSender` runs each send coroutine on the spot, outside any
task, until it finishes or suspends. Only a send that has to wait (the peer reads slower than
rotary writes) becomes a task, and what is written meanwhile is queued and joined into one message
once it is done (a valid batch of Centrifugo's protocol: JSON lines, length-prefixed Protobuf, or
consecutive body bytes). The queued bytes are what ``write_prepared`` reports, so a slow client
is disconnected with 3008 as on every other transport. No task per connection, no task per write.

A ``direct`` write (the WebSocket mount's shortcut past uvicorn's ``send``, asgi_uvicorn.py) takes
the bytes first when nothing waits; when it declines, the send runs as above, and what comes after
waits behind it, so bytes leave in the order they were written either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterator, MutableMapping
from typing import Any, cast

log = logging.getLogger("rotary.transports.mounts")

_DONE = object()
"""What ``next`` returns for a send that finished without suspending."""

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]
Scope = MutableMapping[str, Any]
MessageOf = Callable[[bytes], Message]
"""The ASGI message carrying some bytes (a WebSocket message, a body chunk)."""
Join = Callable[[list[bytes]], bytes]
"""Several queued writes as the bytes of one message."""
Direct = Callable[[bytes], bool]
"""Writes the bytes past ``send`` and returns True, or returns False when ``send`` must take them."""


class AsgiSender:
    """Writes of one connection over its ASGI ``send``, in order, never blocking the caller.

    Also a ``ByteSink`` (transports/stalled.py): ``write``, ``get_write_buffer_size``,
    ``is_closing`` and ``abort`` have an asyncio transport's meaning.
    """

    def __init__(self, send: Send, message_of: MessageOf, join: Join, direct: Direct | None = None) -> None:
        self._send = send
        self._direct = direct
        self._message_of = message_of
        self._join = join
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._waiting: asyncio.Task[None] | None = None
        """The one send that had to wait; every write waits behind it."""
        self._waiting_size = 0
        self._last: Message | None = None
        """The message that ends the connection, sent after the pending writes."""
        self._ending = False
        self._gone = False
        """The peer left, the server refused a send, or the writer was aborted."""
        self._idle: asyncio.Future[None] | None = None

    # -- the ByteSink of the node's writes -------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._ending or self._gone:
            return
        if self._waiting is not None:
            self._pending.append(data)
            self._pending_size += len(data)
            return
        if self._direct is not None and self._direct(data):
            return
        self._start(self._message_of(data), len(data))

    def write_counted(self, data: bytes) -> int:
        """:meth:`write`, then the bytes still unsent: the fan-out's one call per subscriber."""
        self.write(data)
        return self._pending_size + self._waiting_size

    def get_write_buffer_size(self) -> int:
        return self._pending_size + self._waiting_size

    def is_closing(self) -> bool:
        return self._ending or self._gone

    def abort(self) -> None:
        """Drops what waits and stops writing; the server closes the connection when the app returns."""
        self._gone = True
        self._pending.clear()
        self._pending_size = 0
        self._last = None
        if self._waiting is not None:
            self._waiting.cancel()
        self._wake()

    @property
    def gone(self) -> bool:
        return self._gone

    # -- the end ---------------------------------------------------------------------------------

    def end(self, message: Message, drop_pending: bool = False) -> None:
        """Sends ``message`` last, after what is pending unless ``drop_pending``; idempotent."""
        if self._ending or self._gone:
            return
        self._ending = True
        if drop_pending:
            self._pending.clear()
            self._pending_size = 0
        if self._waiting is None:
            self._start(message, 0)
        else:
            self._last = message
        self._wake()

    async def drained(self) -> None:
        """Returns once nothing waits to be sent (or the writer was aborted)."""
        while self._waiting is not None and not self._gone:
            self._idle = asyncio.get_running_loop().create_future()
            try:
                await self._idle
            finally:
                self._idle = None

    # -- running sends ---------------------------------------------------------------------------

    def _start(self, message: Message, size: int) -> None:
        # Stepped with ``next(..., _DONE)`` on the iterator of ``__await__`` rather than
        # ``send(None)``: a send that returns then ends without a StopIteration to raise and catch,
        # and ``__await__`` is what every awaitable has, coroutine or not (no ABC check).
        steps = self._send(message).__await__()
        try:
            yielded = next(steps, _DONE)
        except Exception as exc:  # noqa: BLE001 - any refusal of the server's means the peer has gone
            self._lost(exc)
            return
        if yielded is _DONE:
            return
        self._wait_in_task(_awaited(_Resumed(steps, yielded)), size)

    def _wait_in_task(self, resumed: Coroutine[Any, Any, None], size: int) -> None:
        self._waiting_size = size
        self._waiting = asyncio.get_running_loop().create_task(resumed)
        self._waiting.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._waiting = None
        self._waiting_size = 0
        if not task.cancelled() and task.exception() is not None:
            self._lost(task.exception())
        if not self._gone and self._pending:
            data = self._pending[0] if len(self._pending) == 1 else self._join(self._pending)
            self._pending = []
            self._pending_size = 0
            if self._direct is None or not self._direct(data):
                self._start(self._message_of(data), len(data))
        if not self._gone and self._waiting is None and self._last is not None:
            last, self._last = self._last, None
            self._start(last, 0)
        self._wake()

    def _lost(self, exc: BaseException | None) -> None:
        log.debug("ASGI send failed, dropping the connection's writes: %r", exc)
        self._gone = True
        self._pending.clear()
        self._pending_size = 0
        self._last = None

    def _wake(self) -> None:
        if self._idle is not None and not self._idle.done() and (self._waiting is None or self._gone):
            self._idle.set_result(None)


async def _awaited(awaitable: Awaitable[None]) -> None:
    await awaitable


class _Resumed:
    """A send that suspended outside a task, to be awaited to its end inside one.

    ``yield from`` cannot take over an iterator that has already yielded, so this passes what it
    yields to the task, and what the task sends or throws back to it, until it returns.
    """

    def __init__(self, steps: Iterator[Any], yielded: Any) -> None:
        self._steps = cast(Generator[Any, Any, None], steps)
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, None]:
        steps, yielded = self._steps, self._yielded
        while True:
            try:
                sent = yield yielded
            except BaseException as exc:  # noqa: BLE001 - cancellation included: the send must see it
                try:
                    yielded = steps.throw(exc)
                except StopIteration:
                    return
                continue
            try:
                yielded = steps.send(sent)
            except StopIteration:
                return
