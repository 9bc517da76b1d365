"""The pytest plugin's fixtures, as an application's tests use them (installed entry point)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rotary import ConnectingEvent, ConnectReply, Node
from rotary.testing import TestClient


async def test_fixtures_give_a_node_and_connected_clients(
    rotary_node: Node, rotary_client: Callable[..., Awaitable[TestClient]]
) -> None:
    @rotary_node.on_connecting
    async def connecting(event: ConnectingEvent) -> ConnectReply:
        return ConnectReply(user=event.token)

    first: TestClient = await rotary_client(rotary_node, token="anna")
    second: TestClient = await rotary_client(rotary_node, token="bob")
    assert rotary_node.info().num_users == 2
    assert first.client_id != second.client_id
