"""A hypothesis state machine drives client connections of a real Node (memory engine) with random
commands, server publications, server-side unsubscribes and disconnects, API-style batches, tags
filters, subscription expiry and passing time, and checks the ordering rules of node/subscription.py
after every step:

- every command gets exactly one reply with its id;
- no publication of a channel arrives before that channel's subscribe reply;
- offsets per subscription strictly increase, so nothing is duplicated;
- a publication never reaches a subscriber whose tags filter rejects it;
- nothing accepted is lost: every publication accepted while a subscriber was subscribed (and that
  its filter accepts) reaches it before its subscription ends (unsubscribe reply or push, close),
  unless the end tells it so (unsubscribe 2500 or close 3010).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from helpers.recording import RecordingTransport, frame_payload, send
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from rotary.engines.base import HistoryQuery, PublishOptions
from rotary.node.client import Client
from rotary.node.default_hooks import AllowAllHooks
from rotary.node.hooks import ClientView, SubscribeOptions
from rotary.node.node import Node, NodeConfig
from rotary.protocol import codes, pb

CHANNELS = ("a", "b", "c")
EXPIRING = "c"
"""Subscriptions to this channel expire (an hour from now; the test moves the clock)."""
HISTORY = PublishOptions(history_size=100, history_ttl=300)
FILTER = pb.FilterNode(key="k", cmp="eq", val="1")
TOLD = {codes.UNSUBSCRIBE_INSUFFICIENT_STATE.code, codes.DISCONNECT_INSUFFICIENT_STATE.code}
"""Ends that tell the subscriber it may have missed publications."""


class RecoveringHooks(AllowAllHooks):
    """Every subscription is recoverable, may filter by tags, and those to EXPIRING expire."""

    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        expire_at = int(time.time()) + 3600 if request.channel == EXPIRING else 0
        return SubscribeOptions(
            recoverable=True, positioned=True, allow_tags_filter=True, expire_at=expire_at
        )

    async def on_publish(self, client: ClientView, request: pb.PublishRequest):  # type: ignore[no-untyped-def]
        decision = await super().on_publish(client, request)
        decision.options = HISTORY
        return decision

    async def on_history(self, client: ClientView, request: pb.HistoryRequest) -> float:
        return 0.0


@dataclass
class Subscription:
    """What the model expects on one subscribed channel of the current connection."""

    filtered: bool
    start: int = 0
    """Offsets up to this one came with (or before) the subscribe reply."""
    delivered: list[int] = field(default_factory=list)


@dataclass
class Published:
    offset: int
    matches: bool
    """Whether FILTER accepts its tags."""


class ConnectionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.node = Node(NodeConfig(ping_interval=0), hooks=RecoveringHooks())
        self.run(self.node.start())
        self.accepted: dict[str, list[Published]] = {channel: [] for channel in CHANNELS}
        self.next_id = 1
        self.sent: set[int] = set()
        self.replied: set[int] = set()
        self._open()

    def _open(self) -> None:
        self.transport = RecordingTransport()
        self.client: Client = self.run(self._client())
        self.connected = False
        self.seen = 0
        self.subscribed: dict[str, Subscription] = {}
        """Channels whose subscribe reply arrived and whose end did not yet."""
        self.pending_subscribe: dict[int, tuple[str, bool]] = {}
        self.pending_unsubscribe: dict[int, str] = {}
        self.ending: dict[str, list[Published]] = {}
        """Channel -> what had been accepted when an end was asked for (unsubscribe, expiry)."""

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

    def _ask_end(self, channel: str) -> None:
        """Something asked for the end of ``channel``'s subscription: what it must have got is fixed
        now (the first ask counts; a subscribe reply starts afresh)."""
        self.ending.setdefault(channel, list(self.accepted[channel]))

    async def _publish(self, channel: str, tag: str) -> None:
        result = await self.node.publish(
            channel,
            orjson.dumps({"t": tag}),
            PublishOptions(history_size=100, history_ttl=300, tags={"k": tag}),
        )
        self.accepted[channel].append(Published(result.position.offset, tag == "1"))

    # -- rules ---------------------------------------------------------------------------------

    @precondition(lambda self: not self.connected and not self.client.closed)
    @rule()
    def connect(self) -> None:
        self.command(connect=pb.ConnectRequest())
        self.connected = True

    @precondition(lambda self: self.client.closed)
    @rule()
    def reconnect(self) -> None:
        self._drain()
        self._open()

    @precondition(lambda self: self.connected and not self.client.closed)
    @rule(channel=st.sampled_from(CHANNELS), recover=st.booleans(), filtered=st.booleans())
    def subscribe(self, channel: str, recover: bool, filtered: bool) -> None:
        request = pb.SubscribeRequest(channel=channel, recover=recover, recoverable=True)
        if filtered:
            request.tf.CopyFrom(FILTER)
        cmd_id = self.command(subscribe=request)
        self.pending_subscribe[cmd_id] = (channel, filtered)

    @precondition(lambda self: self.connected and not self.client.closed)
    @rule(channel=st.sampled_from(CHANNELS))
    def unsubscribe(self, channel: str) -> None:
        self._ask_end(channel)
        cmd_id = self.next_id
        self.pending_unsubscribe[cmd_id] = channel
        self.command(unsubscribe=pb.UnsubscribeRequest(channel=channel))

    @precondition(lambda self: self.connected and not self.client.closed)
    @rule(channel=st.sampled_from(CHANNELS), tags=st.lists(st.sampled_from("01"), min_size=1, max_size=3))
    def client_publish(self, channel: str, tags: list[str]) -> None:
        for tag in tags:
            self.command(publish=pb.PublishRequest(channel=channel, data=orjson.dumps({"t": tag})))
            top = self.run(self.node.read_history(channel, HistoryQuery())).position.offset
            self.accepted[channel].append(Published(top, False))

    @rule(channel=st.sampled_from(CHANNELS), tags=st.lists(st.sampled_from("01"), min_size=1, max_size=5))
    def server_publish(self, channel: str, tags: list[str]) -> None:
        for tag in tags:
            self.run(self._publish(channel, tag))

    @rule(
        ops=st.lists(
            st.tuples(st.sampled_from(["publish", "unsubscribe", "disconnect"]), st.sampled_from(CHANNELS)),
            min_size=1,
            max_size=6,
        )
    )
    def api_batch(self, ops: list[tuple[str, str]]) -> None:
        """Server API calls in sequence within one task and loop pass, as the API's `batch` runs them."""

        async def batch() -> None:
            for op, channel in ops:
                if op == "publish":
                    await self._publish(channel, "1")
                elif op == "unsubscribe":
                    self._ask_end(channel)
                    await self.node.unsubscribe("", channel, client_id=self.client.id)
                else:
                    for ch in CHANNELS:
                        self._ask_end(ch)
                    await self.node.disconnect("", client_id=self.client.id)

        self.run(batch())

    @precondition(lambda self: self.connected and not self.client.closed)
    @rule()
    def expire_subscriptions(self) -> None:
        """Moves the session's clock past the expiry of every expiring subscription (plus grace)."""
        self._ask_end(EXPIRING)
        self.run(self._expire())

    async def _expire(self) -> None:
        later = 10**7
        assert self.client.session.timer_fired(self.client.loop_time() + later, time.time() + later) is None
        self.client._end_expired_subscriptions()
        self.client.flush()

    @precondition(lambda self: self.connected and not self.client.closed)
    @rule(channel=st.sampled_from(CHANNELS))
    def history(self, channel: str) -> None:
        self.command(history=pb.HistoryRequest(channel=channel, limit=10))

    @rule(ticks=st.integers(0, 3))
    def let_time_pass(self, ticks: int) -> None:
        for _ in range(ticks):
            self.run(asyncio.sleep(0))

    # -- checks --------------------------------------------------------------------------------

    @invariant()
    def protocol_invariants(self) -> None:
        self._drain()

    def _drain(self) -> None:
        frames = self.transport.frames
        for frame in frames[self.seen :]:
            for line in frame_payload(frame).split(b"\n"):
                self._check(orjson.loads(line))
        self.seen = len(frames)
        closed = self.transport.closed_with
        if closed is not None and self.subscribed:
            for channel in list(self.subscribed):
                self._ended(channel, told=closed.code in TOLD)

    def _check(self, message: dict[str, Any]) -> None:
        if "push" in message:
            self._check_push(message["push"])
            return
        reply_id = message["id"]
        assert reply_id in self.sent and reply_id not in self.replied, f"unexpected reply id {reply_id}"
        self.replied.add(reply_id)
        if reply_id in self.pending_subscribe:
            channel, filtered = self.pending_subscribe.pop(reply_id)
            if "subscribe" in message:
                result = message["subscribe"]
                pubs = result.get("publications", [])
                last = result.get("offset", 0)
                for pub in pubs:
                    assert pub["offset"] > last or not result.get("recovered")
                self.subscribed[channel] = Subscription(filtered, max([last] + [p["offset"] for p in pubs]))
                self.ending.pop(channel, None)
        elif reply_id in self.pending_unsubscribe:
            channel = self.pending_unsubscribe.pop(reply_id)
            if channel in self.subscribed:
                self._ended(channel, told=False)

    def _check_push(self, push: dict[str, Any]) -> None:
        channel = push["channel"]
        if "pub" in push:
            sub = self.subscribed.get(channel)
            assert sub is not None, f"publication on {channel} outside a subscription"
            offset = push["pub"]["offset"]
            previous = sub.delivered[-1] if sub.delivered else sub.start
            assert offset > previous, f"offset {offset} not after {previous}"
            if sub.filtered:
                assert push["pub"].get("tags", {}).get("k") == "1", (
                    "the tags filter let a publication through"
                )
            sub.delivered.append(offset)
        elif "unsubscribe" in push and channel in self.subscribed:
            self._ended(channel, told=push["unsubscribe"]["code"] in TOLD)

    def _ended(self, channel: str, told: bool) -> None:
        """The subscription ended: unless told, it got everything accepted before the end was asked."""
        sub = self.subscribed.pop(channel)
        accepted = self.ending.pop(channel, self.accepted[channel])
        if told:
            return
        expected = [p.offset for p in accepted if p.offset > sub.start and (p.matches or not sub.filtered)]
        assert sub.delivered[: len(expected)] == expected, (
            f"{channel}: accepted {expected} before the end, delivered {sub.delivered}"
        )

    def teardown(self) -> None:
        self.run(asyncio.sleep(0))
        self._drain()
        assert self.replied == self.sent, f"commands without reply: {sorted(self.sent - self.replied)}"
        self.run(self.node.shutdown())
        self._drain()
        self.loop.close()


ConnectionMachine.TestCase.settings = settings(max_examples=80, stateful_step_count=30, deadline=None)
TestConnection = ConnectionMachine.TestCase
