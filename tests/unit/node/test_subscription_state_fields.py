"""node/subscription.py builds each subscription's ChannelState positionally (it runs on every
subscribe); every option must still land in its own field."""

from __future__ import annotations

import itertools
import time

import pytest
from helpers.recording import RecordingTransport, send

from rotary.node.client import Client
from rotary.node.default_hooks import AllowAllHooks
from rotary.node.hooks import ClientView, SubscribeOptions
from rotary.node.node import Node, NodeConfig
from rotary.protocol import pb
from rotary.session.channels import SubscriptionStatus

EXPIRE_AT = int(time.time()) + 3600


class DistinctOptionsHooks(AllowAllHooks):
    def __init__(self, flags: tuple[bool, ...]) -> None:
        super().__init__()
        self.flags = flags

    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        positioned, push, presence, join_leave, refresh = self.flags
        return SubscribeOptions(
            chan_info=b'{"c":1}',
            expire_at=EXPIRE_AT,
            emit_presence=presence,
            emit_join_leave=join_leave,
            push_join_leave=push,
            positioned=positioned,
            delta="fossil",
            allow_tags_filter=True,
            server_side_refresh=refresh,
        )


@pytest.mark.parametrize("flags", list(itertools.product([False, True], repeat=5)))
async def test_each_subscribe_option_lands_in_its_own_state_field(flags: tuple[bool, ...]) -> None:
    positioned, push, presence, join_leave, refresh = flags
    node = Node(NodeConfig(ping_interval=0), hooks=DistinctOptionsHooks(flags))
    await node.start()
    try:
        client = Client(node, RecordingTransport())
        await send(client, pb.Command(id=1, connect=pb.ConnectRequest()))
        request = pb.SubscribeRequest(
            channel="ch", delta="fossil", tf=pb.FilterNode(key="k", cmp="eq", val="1")
        )
        await send(client, pb.Command(id=2, subscribe=request))
        state = client.channels["ch"]
        assert state.channel == "ch"
        assert state.server_side is False
        assert state.positioned is positioned
        flags_read = (state.push_join_leave, state.emit_presence, state.emit_join_leave)
        assert flags_read == (push, presence, join_leave)
        assert state.expire_at == EXPIRE_AT
        assert state.chan_info == b'{"c":1}'
        assert state.delta == "fossil"
        assert state.tags_filter is not None and state.tags_filter({"k": "1"}) and not state.tags_filter({})
        assert state.server_side_refresh is refresh
        assert state.status is SubscriptionStatus.SUBSCRIBED
    finally:
        await node.shutdown()
