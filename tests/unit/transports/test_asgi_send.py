"""AsgiSender (transports/mounts/asgi_send.py) over an ASGI ``send`` that behaves as a server's does:
it finishes on the spot while its socket has room, and suspends until the socket drains when it has
none (uvicorn awaits its ``writable`` event). The compat mount tests run the same paths under
uvicorn; these pin the order of writes, the join of what waited and sends that are awaitables other
than coroutines."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest

from rotary.transports.mounts.asgi_send import AsgiSender, Message


class Socket:
    """What an ASGI server's ``send`` writes to: the messages taken, and whether there is room."""

    def __init__(self) -> None:
        self.taken: list[Message] = []
        self.writable = asyncio.Event()
        self.writable.set()

    async def send(self, message: Message) -> None:
        await self.writable.wait()
        self.taken.append(message)

    def send_future(self, message: Message) -> Awaitable[None]:
        """A ``send`` that returns a future, not a coroutine: done at once while there is room."""
        done = asyncio.get_running_loop().create_future()

        def take(_: object = None) -> None:
            self.taken.append(message)
            done.set_result(None)

        if self.writable.is_set():
            take()
        else:
            asyncio.get_running_loop().create_task(self.writable.wait()).add_done_callback(take)
        return done


def text(data: bytes) -> Message:
    return {"type": "websocket.send", "text": data.decode()}


def lines(parts: list[bytes]) -> bytes:
    return b"\n".join(parts)


@pytest.mark.parametrize("kind", ["coroutine", "future"])
async def test_sends_that_finish_are_written_in_order_on_the_spot(kind: str) -> None:
    socket = Socket()
    sender = AsgiSender(socket.send if kind == "coroutine" else socket.send_future, text, lines)
    tasks = len(asyncio.all_tasks())
    sender.write(b"1")
    sender.write(b"2")
    assert [m["text"] for m in socket.taken] == ["1", "2"]
    assert len(asyncio.all_tasks()) == tasks
    assert sender.get_write_buffer_size() == 0


@pytest.mark.parametrize("kind", ["coroutine", "future"])
async def test_writes_behind_a_waiting_send_go_out_joined_once_it_finishes(kind: str) -> None:
    socket = Socket()
    sender = AsgiSender(socket.send if kind == "coroutine" else socket.send_future, text, lines)
    socket.writable.clear()
    sender.write(b"1")
    sender.write(b"22")
    sender.write(b"333")
    assert socket.taken == []
    assert sender.get_write_buffer_size() == 6
    socket.writable.set()
    await asyncio.wait_for(sender.drained(), 5)
    assert [m["text"] for m in socket.taken] == ["1", "22\n333"]
    assert sender.get_write_buffer_size() == 0


async def test_a_refused_send_drops_the_connection_writes() -> None:
    async def refuse(message: Message) -> None:
        raise OSError("peer gone")

    sender = AsgiSender(refuse, text, lines)
    sender.write(b"1")
    assert sender.gone
    sender.write(b"2")
    assert sender.get_write_buffer_size() == 0


async def test_abort_cancels_the_waiting_send() -> None:
    socket = Socket()
    sender = AsgiSender(socket.send, text, lines)
    socket.writable.clear()
    sender.write(b"1")
    sender.write(b"2")
    sender.abort()
    await asyncio.wait_for(sender.drained(), 5)
    socket.writable.set()
    await asyncio.sleep(0)
    assert socket.taken == []
    assert sender.gone


async def test_a_direct_write_takes_bytes_while_nothing_waits_and_order_holds() -> None:
    """The uvicorn shortcut (asgi_uvicorn.py) as ``direct``: it writes to the same socket while
    there is room and declines when there is none; what comes after a declined write waits behind
    its send, and the joined rest goes direct again once the socket drains."""
    socket = Socket()
    wire: list[str] = []

    def direct(data: bytes) -> bool:
        if socket.writable.is_set():
            wire.append(data.decode())
            return True
        return False

    async def send(message: Message) -> None:
        await socket.send(message)
        wire.append(message["text"])

    sender = AsgiSender(send, text, lines, direct)
    sender.write(b"1")
    socket.writable.clear()
    sender.write(b"2")
    sender.write(b"3")
    sender.write(b"4")
    assert wire == ["1"]
    assert sender.get_write_buffer_size() == 3
    socket.writable.set()
    await asyncio.wait_for(sender.drained(), 5)
    sender.write(b"5")
    assert wire == ["1", "2", "3\n4", "5"]
    assert [m["text"] for m in socket.taken] == ["2"]  # only the declined write went through send
    sender.end({"type": "websocket.close"})
    await asyncio.wait_for(sender.drained(), 5)
    assert socket.taken[-1] == {"type": "websocket.close"}  # the end always goes through send
