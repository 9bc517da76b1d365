"""Dropping a socket whose peer stopped reading, once its last bytes are due.

A peer that stopped reading (the usual reason for 3008 "slow") never takes the end of its stream,
and the handler would wait on it forever; Centrifugo likewise drops a socket once a write misses
its deadline. The check is armed only while bytes wait, so a connection that closed cleanly leaves
no timer behind (the reliability kit's soak counts them).
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class ByteSink(Protocol):
    """What a stream writes to: an asyncio transport, or a mount's writer over an ASGI send."""

    def write(self, data: bytes) -> None: ...

    def get_write_buffer_size(self) -> int: ...

    def is_closing(self) -> bool: ...

    def abort(self) -> None: ...


def drop_if_stalled(sock: ByteSink, timeout: float) -> None:
    """Aborts ``sock`` after ``timeout`` seconds if bytes it holds now are still unwritten then."""
    if sock.get_write_buffer_size() > 0:
        asyncio.get_running_loop().call_later(timeout, _abort_if_stalled, sock)


def _abort_if_stalled(sock: ByteSink) -> None:
    if sock.get_write_buffer_size() > 0:
        sock.abort()
