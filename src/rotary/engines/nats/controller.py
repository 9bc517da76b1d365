"""The NATS Controller: messages between rotary nodes over NATS subjects."""

from __future__ import annotations

import ssl
from collections.abc import Callable

from nats.aio.msg import Msg

from rotary.engines.nats.connection import (
    Connection,
    NatsBrokerSettings,
    NatsOptions,
    as_engine_error,
    escape,
)


class NatsController:
    """Controller over NATS: ``<prefix>.control`` reaches every node, ``<prefix>.node.<id>`` one node.

    Every node subscribes to both, so its own broadcasts come back to it as the contract says.
    """

    def __init__(self, node_id: str, options: NatsOptions | None = None) -> None:
        self.node_id = node_id
        self._options = options or NatsOptions()
        self._connection = Connection(self._options, "controller")
        self._started = False

    @classmethod
    def from_config(
        cls, node_id: str, config: NatsBrokerSettings, *, tls: ssl.SSLContext | None = None
    ) -> NatsController:
        return cls(node_id, NatsOptions.from_config(config, tls=tls))

    @property
    def connected(self) -> bool:
        return self._connection.connected

    async def start(self, handler: Callable[[bytes], None]) -> None:
        if self._started:
            return
        await self._connection.open()
        client = self._connection.require()

        async def receive(msg: Msg) -> None:
            handler(msg.data)

        with as_engine_error("subscribe to control subjects"):
            await client.subscribe(self._all_subject, cb=receive)
            await client.subscribe(self._node_subject(self.node_id), cb=receive)
        await self._connection.round_trip()
        self._started = True

    async def publish_control(self, data: bytes, to_node: str = "") -> None:
        client = self._connection.require()
        subject = self._node_subject(to_node) if to_node else self._all_subject
        with as_engine_error(f"publish to {subject}"):
            await client.publish(subject, data)

    async def close(self) -> None:
        self._started = False
        await self._connection.close()

    @property
    def _all_subject(self) -> str:
        return f"{self._options.prefix}.control"

    def _node_subject(self, node_id: str) -> str:
        return f"{self._options.prefix}.node.{escape(node_id)}"
