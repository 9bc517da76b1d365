"""The chat example's hooks (examples/chat/app.py), tested as its authors would: with
rotary.testing.TestClient, no sockets. A logged-in connection is one whose request (the ASGI scope
the mount hands the hooks) carries the host's session, as Starlette's SessionMiddleware fills it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import rotary
from examples.chat.app import chat_node
from rotary.testing import TestClient

LOBBY = "chat:lobby"


def session_of(user: str) -> dict[str, object]:
    """The ASGI scope of a WebSocket handshake after SessionMiddleware decoded ``user``'s cookie."""
    return {"type": "websocket", "path": "/rotary/connection/websocket", "session": {"user": user}}


async def next_join_or_leave(client: TestClient, kind: str, user: str) -> bool:
    """Waits for ``user``'s join or leave push (a subscriber also gets its own join first)."""
    while True:
        push = await client.next_push(kind, LOBBY)
        if push.info is not None and push.info.user == user:
            return True


@pytest.fixture
async def node() -> AsyncIterator[rotary.Node]:
    async with chat_node() as started:
        yield started


async def test_a_connection_without_the_hosts_login_is_refused(node: rotary.Node) -> None:
    with pytest.raises(rotary.Unauthorized):
        await TestClient(node).connect()
    with pytest.raises(rotary.Unauthorized):
        await TestClient(node, request={"type": "websocket", "session": {}}).connect()
    assert node.info().num_clients == 0


async def test_the_session_names_the_user_and_rooms_are_the_only_channels(node: rotary.Node) -> None:
    async with TestClient(node, request=session_of("anna")) as anna:
        subscribed = await anna.subscribe(LOBBY)
        assert subscribed.recoverable and subscribed.position is not None
        with pytest.raises(rotary.UnknownChannel):
            await anna.subscribe("news")
        with pytest.raises(rotary.UnknownChannel):
            await anna.subscribe("chat:Not A Room")
        presence = await anna.presence(LOBBY)
        assert [(info.user, info.conn_info) for info in presence.values()] == [("anna", b'{"name":"anna"}')]


async def test_messages_are_stamped_with_their_author_and_checked(node: rotary.Node) -> None:
    async with (
        TestClient(node, request=session_of("anna")) as anna,
        TestClient(node, request=session_of("bob")) as bob,
    ):
        await anna.subscribe(LOBBY)
        await bob.subscribe(LOBBY)
        await anna.publish(LOBBY, {"text": "  hello bob  ", "user": "mallory"})
        received = await bob.next_publication(LOBBY)
        assert received.json() == {"user": "anna", "text": "hello bob"}
        assert received.info is not None and received.info.user == "anna"
        for bad in ({"text": "   "}, {"text": "x" * 1001}, {"text": 7}, "hello", None):
            with pytest.raises(rotary.BadRequest):
                await anna.publish(LOBBY, bad)
        assert [push for push in bob.pending() if push.kind == "publication"] == []


async def test_presence_shows_everyone_in_the_room_and_joins_are_pushed(node: rotary.Node) -> None:
    async with TestClient(node, request=session_of("anna")) as anna:
        await anna.subscribe(LOBBY)
        async with TestClient(node, request=session_of("bob")) as bob:
            await bob.subscribe(LOBBY)
            assert await next_join_or_leave(anna, "join", "bob")
            users = sorted(info.user for info in (await bob.presence(LOBBY)).values())
            assert users == ["anna", "bob"]
        assert await next_join_or_leave(anna, "leave", "bob")
        assert [info.user for info in (await anna.presence(LOBBY)).values()] == ["anna"]


async def test_a_newcomer_reads_the_last_messages(node: rotary.Node) -> None:
    async with TestClient(node, request=session_of("anna")) as anna:
        await anna.subscribe(LOBBY)
        for number in range(55):
            await anna.publish(LOBBY, {"text": f"message {number}"})
    async with TestClient(node, request=session_of("carol")) as carol:
        subscribed = await carol.subscribe(LOBBY)
        history = await carol.history(LOBBY, limit=50, reverse=True)
        assert [pub.json()["text"] for pub in reversed(history.publications)] == [
            f"message {number}" for number in range(5, 55)
        ]
        assert subscribed.position == history.position


async def test_a_reconnecting_client_recovers_what_it_missed(node: rotary.Node) -> None:
    async with TestClient(node, request=session_of("anna")) as anna:
        position = (await anna.subscribe(LOBBY)).position
    async with TestClient(node, request=session_of("bob")) as bob:
        await bob.subscribe(LOBBY)
        await bob.publish(LOBBY, {"text": "while you were away"})
    async with TestClient(node, request=session_of("anna")) as anna:
        again = await anna.subscribe(LOBBY, recover_since=position)
        assert again.was_recovering and again.recovered
        assert [pub.json() for pub in again.publications] == [{"user": "bob", "text": "while you were away"}]
