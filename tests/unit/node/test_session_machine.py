"""A hypothesis state machine drives one client connection of a real Node with random commands,
server publications and passing time, and checks the protocol's invariants after every step:
every command gets exactly one reply with its id; no publication of a channel arrives before that
channel's subscribe reply; offsets per subscription strictly increase, so nothing is duplicated."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from helpers.recording import RecordingTransport, frame_payload, send
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from rotary.engines.base import PublishOptions
from rotary.node.client import Client
from rotary.node.default_hooks import AllowAllHooks
from rotary.node.hooks import ClientView, SubscribeOptions
from rotary.node.node import Node, NodeConfig
from rotary.protocol import pb

CHANNELS = ("a", "b", "c")
HISTORY = PublishOptions(history_size=100, history_ttl=300)


class RecoveringHooks(AllowAllHooks):
    """Every subscription is recoverable and every publish is kept in history."""

    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        return SubscribeOptions(recoverable=True, positioned=True)

    async def on_publish(self, client: ClientView, request: pb.PublishRequest):  # type: ignore[no-untyped-def]
        decision = await super().on_publish(client, request)
        decision.options = HISTORY
        return decision

    async def on_history(self, client: ClientView, request: pb.HistoryRequest) -> float:
        return 0.0


class ConnectionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.node = Node(NodeConfig(ping_interval=0), hooks=RecoveringHooks())
        self.run(self.node.start())
        self.transport = RecordingTransport()
        self.client = self.run(self._client())
        self.next_id = 1
        self.sent: set[int] = set()
        self.connected = False
        self.seen = 0
        self.replied: set[int] = set()
        self.subscribed: dict[str, int] = {}
        """Channel -> last offset seen, for channels whose subscribe reply arrived."""
        self.pending_subscribe: dict[int, str] = {}
        self.pending_unsubscribe: dict[int, str] = {}

    async def _client(self) -> Client:
        return Client(self.node, self.transport)

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def command(self, **request: Any) -> int:
        cmd_id = self.next_id
        self.next_id += 1
        self.sent.add(cmd_id)
        self.run(send(self.client, pb.Command(id=cmd_id, **request)))
        return cmd_id

    @precondition(lambda self: not self.connected)
    @rule()
    def connect(self) -> None:
        self.command(connect=pb.ConnectRequest())
        self.connected = True

    @precondition(lambda self: self.connected)
    @rule(channel=st.sampled_from(CHANNELS), recover=st.booleans())
    def subscribe(self, channel: str, recover: bool) -> None:
        cmd_id = self.command(
            subscribe=pb.SubscribeRequest(channel=channel, recover=recover, recoverable=True)
        )
        self.pending_subscribe[cmd_id] = channel

    @precondition(lambda self: self.connected)
    @rule(channel=st.sampled_from(CHANNELS))
    def unsubscribe(self, channel: str) -> None:
        cmd_id = self.command(unsubscribe=pb.UnsubscribeRequest(channel=channel))
        self.pending_unsubscribe[cmd_id] = channel

    @precondition(lambda self: self.connected)
    @rule(channel=st.sampled_from(CHANNELS), n=st.integers(1, 3))
    def client_publish(self, channel: str, n: int) -> None:
        for i in range(n):
            self.command(publish=pb.PublishRequest(channel=channel, data=orjson.dumps({"i": i})))

    @rule(channel=st.sampled_from(CHANNELS), n=st.integers(1, 5))
    def server_publish(self, channel: str, n: int) -> None:
        for i in range(n):
            self.run(self.node.publish(channel, orjson.dumps({"s": i}), HISTORY))

    @precondition(lambda self: self.connected)
    @rule(channel=st.sampled_from(CHANNELS))
    def history(self, channel: str) -> None:
        self.command(history=pb.HistoryRequest(channel=channel, limit=10))

    @rule(ticks=st.integers(0, 3))
    def let_time_pass(self, ticks: int) -> None:
        for _ in range(ticks):
            self.run(asyncio.sleep(0))

    @invariant()
    def protocol_invariants(self) -> None:
        frames = self.transport.frames
        for frame in frames[self.seen :]:
            for line in frame_payload(frame).split(b"\n"):
                self._check(orjson.loads(line))
        self.seen = len(frames)
        assert self.transport.closed_with is None

    def _check(self, message: dict[str, Any]) -> None:
        if "push" in message:
            push = message["push"]
            channel = push["channel"]
            if "pub" in push:
                assert channel in self.subscribed, f"publication on {channel} before its subscribe reply"
                offset = push["pub"]["offset"]
                assert offset > self.subscribed[channel], (
                    f"offset {offset} not after {self.subscribed[channel]}"
                )
                self.subscribed[channel] = offset
            return
        reply_id = message["id"]
        assert reply_id in self.sent and reply_id not in self.replied, f"unexpected reply id {reply_id}"
        self.replied.add(reply_id)
        if reply_id in self.pending_subscribe:
            channel = self.pending_subscribe.pop(reply_id)
            if "subscribe" in message:
                result = message["subscribe"]
                pubs = result.get("publications", [])
                last = result.get("offset", 0)
                for pub in pubs:
                    assert pub["offset"] > last or not result.get("recovered")
                self.subscribed[channel] = max([last] + [p["offset"] for p in pubs])
        elif reply_id in self.pending_unsubscribe:
            self.subscribed.pop(self.pending_unsubscribe.pop(reply_id), None)

    def teardown(self) -> None:
        self.run(asyncio.sleep(0))
        assert self.replied == self.sent, f"commands without reply: {sorted(self.sent - self.replied)}"
        self.run(self.node.shutdown())
        self.loop.close()


ConnectionMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestConnection = ConnectionMachine.TestCase
