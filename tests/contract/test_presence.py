"""The PresenceManager contract: who is in a channel, and how many clients and users that makes.

Every test runs once per implementation registered in ``conftest.PRESENCE_MANAGERS``.
See https://centrifugal.dev/docs/server/presence.
"""

from __future__ import annotations

from rotary.engines.base import PresenceManager, PresenceStats
from rotary.protocol import pb

ANN_PHONE = pb.ClientInfo(user="42", client="c-phone", conn_info=b'{"device":"phone"}')
ANN_LAPTOP = pb.ClientInfo(user="42", client="c-laptop")
GUEST = pb.ClientInfo(user="", client="c-guest")


async def join_all(presence_manager: PresenceManager, channel: str) -> None:
    for info in (ANN_PHONE, ANN_LAPTOP, GUEST):
        await presence_manager.add_presence(channel, info.client, info)


async def test_an_empty_channel_has_nobody(presence_manager: PresenceManager) -> None:
    assert await presence_manager.presence("room") == {}
    assert await presence_manager.presence_stats("room") == PresenceStats(num_clients=0, num_users=0)


async def test_presence_lists_every_client_by_id(presence_manager: PresenceManager) -> None:
    await join_all(presence_manager, "room")

    assert await presence_manager.presence("room") == {
        "c-phone": ANN_PHONE,
        "c-laptop": ANN_LAPTOP,
        "c-guest": GUEST,
    }


async def test_stats_count_one_user_for_two_clients_and_one_for_the_anonymous(
    presence_manager: PresenceManager,
) -> None:
    await join_all(presence_manager, "room")

    assert await presence_manager.presence_stats("room") == PresenceStats(num_clients=3, num_users=2)


async def test_adding_again_refreshes_the_entry(presence_manager: PresenceManager) -> None:
    await join_all(presence_manager, "room")
    renamed = pb.ClientInfo(user="42", client="c-phone", conn_info=b'{"device":"tablet"}')

    await presence_manager.add_presence("room", "c-phone", renamed)

    presence = await presence_manager.presence("room")
    assert len(presence) == 3
    assert presence["c-phone"] == renamed


async def test_removing_clients_one_by_one(presence_manager: PresenceManager) -> None:
    await join_all(presence_manager, "room")
    stats = []

    for info in (ANN_PHONE, ANN_LAPTOP, GUEST):
        await presence_manager.remove_presence("room", info.client, info.user)
        stats.append(await presence_manager.presence_stats("room"))

    assert stats == [PresenceStats(2, 2), PresenceStats(1, 1), PresenceStats(0, 0)]
    assert await presence_manager.presence("room") == {}


async def test_removing_an_absent_client_is_harmless(presence_manager: PresenceManager) -> None:
    await presence_manager.add_presence("room", "c-phone", ANN_PHONE)

    await presence_manager.remove_presence("room", "c-nobody", "7")
    await presence_manager.remove_presence("empty-room", "c-nobody", "7")

    assert await presence_manager.presence("room") == {"c-phone": ANN_PHONE}


async def test_channels_are_independent(presence_manager: PresenceManager) -> None:
    await join_all(presence_manager, "room")
    await presence_manager.add_presence("hall", "c-guest", GUEST)

    await presence_manager.remove_presence("hall", "c-guest", "")

    assert await presence_manager.presence_stats("room") == PresenceStats(3, 2)
    assert await presence_manager.presence_stats("hall") == PresenceStats(0, 0)


async def test_presence_is_a_snapshot(presence_manager: PresenceManager) -> None:
    await join_all(presence_manager, "room")
    snapshot = await presence_manager.presence("room")

    await presence_manager.remove_presence("room", "c-guest", "")

    assert "c-guest" in snapshot
