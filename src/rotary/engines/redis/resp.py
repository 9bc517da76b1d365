"""A plain RESP2 connection to one Redis server, read and written without redis-py.

PUB/SUB connections and the command pipelines of standalone and Sentinel deployments use it: writes
are synchronous, a read returns every reply that has arrived, and hiredis parses them. It finds its
server the way the shard says (the shard's own address, a Cluster node, Sentinel's current master),
then authenticates, names itself and selects the database.
See https://centrifugal.dev/docs/server/engines#redis-engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import hiredis

if TYPE_CHECKING:
    from rotary.engines.redis.shards import RedisShard

__all__ = ["RespConnection", "encode_command"]

READ_SIZE = 1 << 16


def encode_command(*args: bytes | str | int) -> bytes:
    packed = hiredis.pack_command(args)  # type: ignore[arg-type]  # its stub declares a 1-tuple
    return bytes(packed)


class RespConnection:
    """One connection: ``send`` queues bytes on the socket, ``read`` awaits the next replies."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = hiredis.Reader()

    @classmethod
    async def open(cls, shard: RedisShard, route: str, db: int = 0) -> RespConnection:
        """Connects within the connect timeout; ``db`` matters to commands, not to PUB/SUB."""
        kwargs = shard.connect_kwargs
        async with asyncio.timeout(kwargs["socket_connect_timeout"]):
            if shard.unix_path:
                streams = await asyncio.open_unix_connection(shard.unix_path)
            else:
                host, port = await shard.locate(route)
                tls = kwargs["tls"]
                if tls is None:
                    streams = await asyncio.open_connection(host, port)
                else:
                    server_name = tls.server_name or None
                    streams = await asyncio.open_connection(
                        host, port, ssl=tls.context, server_hostname=server_name
                    )
            conn = cls(*streams)
            try:
                await conn._handshake(kwargs, db)
            except BaseException:
                conn.close()
                raise
        return conn

    async def _handshake(self, kwargs: dict[str, Any], db: int) -> None:
        commands: list[tuple[str, ...]] = []
        if kwargs["password"]:
            commands.append(("AUTH", *filter(None, (kwargs["username"], kwargs["password"]))))
        if kwargs["client_name"]:
            commands.append(("CLIENT", "SETNAME", kwargs["client_name"]))
        if db:
            commands.append(("SELECT", str(db)))
        if not commands:
            return
        self.send(encode_command(*command) for command in commands)
        for reply in await self.read_exactly(len(commands)):
            if isinstance(reply, hiredis.ReplyError):
                raise ConnectionError(f"redis refused the connection: {reply}")

    def send(self, commands: Iterable[bytes]) -> None:
        if not self._writer.is_closing():
            self._writer.write(b"".join(commands))

    async def read(self) -> list[Any]:
        replies: list[Any] = []
        while True:
            reply = self._parser.gets()
            while reply is not False:
                replies.append(reply)
                reply = self._parser.gets()
            if replies:
                return replies
            data = await self._reader.read(READ_SIZE)
            if not data:
                raise ConnectionError("redis closed the connection")
            self._parser.feed(data)

    async def read_exactly(self, count: int) -> list[Any]:
        """The next ``count`` replies; a connection that sends more is out of step and fails."""
        replies: list[Any] = []
        while len(replies) < count:
            replies += await self.read()
        if len(replies) > count:
            raise ConnectionError(f"redis sent {len(replies)} replies to {count} commands")
        return replies

    def close(self) -> None:
        self._writer.close()
