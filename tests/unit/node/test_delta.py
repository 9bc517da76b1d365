"""Delta compression and tags filters on the fan-out path, with a real Node and memory engine.

Deltas are judged by centrifuge-python's own codecs: what a delta subscriber reconstructs must equal
what a plain subscriber receives, live and after recovery. Frames stay shared: a delta group builds at
most two (whole and delta) per publication, and a filter only picks who gets the group's frame.
"""

from __future__ import annotations

import asyncio
import types
from typing import Any

import orjson
import pytest
from centrifuge.codecs import _JsonCodec, _ProtobufCodec
from helpers.recording import RecordingTransport, frame_payload, json_messages, send

from rotary.engines.base import HistoryQuery, HistoryResult, PublishOptions
from rotary.engines.memory import MemoryBroker
from rotary.node.client import Client
from rotary.node.default_hooks import AllowAllHooks
from rotary.node.hooks import ClientView, SubscribeOptions
from rotary.node.node import Node, NodeConfig
from rotary.protocol import codes, pb
from rotary.protocol.codec import ProtocolType
from rotary.protocol.protobuf_codec import PROTOBUF_CODEC

DELTA = PublishOptions(history_size=100, history_ttl=300, use_delta=True)
PLAIN = PublishOptions(history_size=100, history_ttl=300)
PROTOCOLS = [ProtocolType.JSON, ProtocolType.PROTOBUF]


class DeltaHooks(AllowAllHooks):
    """Grants positioning, recovery and whatever delta type the client asks for."""

    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        return SubscribeOptions(
            positioned=True, recoverable=True, delta=request.delta, allow_tags_filter=True
        )


@pytest.fixture
async def node() -> Any:
    node = Node(NodeConfig(ping_interval=0), hooks=DeltaHooks())
    await node.start()
    yield node
    await node.shutdown()


def replies(transport: RecordingTransport) -> list[pb.Reply]:
    """Every reply or push the transport received, as protobuf messages whatever the protocol."""
    out: list[pb.Reply] = []
    for frame in transport.frames:
        payload = frame_payload(frame)
        if transport.protocol is ProtocolType.PROTOBUF:
            out += PROTOBUF_CODEC.decode(payload, pb.Reply)
        else:
            out += [_json_reply(line) for line in payload.split(b"\n")]
    return out


def _json_reply(line: bytes) -> pb.Reply:
    """A JSON reply with each publication's data kept as the JSON text it was on the wire."""
    message = orjson.loads(line)
    pubs = message.get("subscribe", {}).get("publications", [])
    pushed = message.get("push", {}).get("pub")
    reply = pb.Reply(id=message.get("id", 0))
    for raw in pubs + ([pushed] if pushed else []):
        data = raw.get("data")
        target = reply.subscribe.publications.add() if pushed is None else reply.push.pub
        target.offset = raw.get("offset", 0)
        target.delta = raw.get("delta", False)
        target.data = data.encode() if isinstance(data, str) else orjson.dumps(data)
        target.tags.update(raw.get("tags", {}))
    if "error" in message:
        reply.error.code = message["error"]["code"]
    if "subscribe" in message:
        reply.subscribe.delta = message["subscribe"].get("delta", False)
        reply.subscribe.recovered = message["subscribe"].get("recovered", False)
    return reply


def publications(transport: RecordingTransport) -> list[pb.Publication]:
    """Recovered and pushed publications, in the order the client gets them."""
    out: list[pb.Publication] = []
    for reply in replies(transport):
        out += reply.subscribe.publications
        if reply.push.HasField("pub"):
            out.append(reply.push.pub)
    return out


def decoded(transport: RecordingTransport) -> list[Any]:
    """Publication data as centrifuge-python hands it to a delta subscription's handler."""
    codec = _JsonCodec if transport.protocol is ProtocolType.JSON else _ProtobufCodec
    base: Any = None
    values = []
    for pub in publications(transport):
        wire = pub.data.decode() if transport.protocol is ProtocolType.JSON else pub.data
        value, base = codec.apply_delta_if_needed(base, types.SimpleNamespace(delta=pub.delta, data=wire))
        values.append(value if transport.protocol is ProtocolType.JSON else orjson.loads(value))
    return values


async def subscriber(
    node: Node, protocol: ProtocolType, channel: str = "ch", keep_reply: bool = False, **request: Any
) -> RecordingTransport:
    """A connected client subscribed to ``channel``; what it received so far is forgotten unless
    ``keep_reply`` (the connect reply is always dropped)."""
    transport = RecordingTransport(protocol)
    client = Client(node, transport)
    await send(client, pb.Command(id=1, connect=pb.ConnectRequest()))
    transport.frames.clear()
    await send(client, pb.Command(id=2, subscribe=pb.SubscribeRequest(channel=channel, **request)))
    if not keep_reply:
        transport.frames.clear()
    return transport


def document(version: int) -> bytes:
    rows = [{"id": i, "name": f"row {i}", "v": version if i == 7 else i} for i in range(40)]
    return orjson.dumps({"rows": rows})


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_delta_subscriber_reconstructs_what_a_plain_one_gets(
    node: Node, protocol: ProtocolType
) -> None:
    plain = await subscriber(node, protocol)
    delta = await subscriber(node, protocol, delta="fossil")
    for version in range(5):
        await node.publish("ch", document(version), DELTA)
        await asyncio.sleep(0)  # fan-out happens at the end of the loop pass
    flags = [pub.delta for pub in publications(delta)]
    assert flags == [False, True, True, True, True]  # the first one after subscribing is whole
    assert all(len(p.data) < 100 for p in publications(delta)[1:])
    assert decoded(delta) == [orjson.loads(p.data) for p in publications(plain)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_delta_group_shares_two_frames(node: Node, protocol: ProtocolType) -> None:
    early = [await subscriber(node, protocol, delta="fossil") for _ in range(3)]
    await node.publish("ch", document(0), DELTA)
    await asyncio.sleep(0)  # fan-out happens at the end of the loop pass
    late = [await subscriber(node, protocol, delta="fossil") for _ in range(2)]
    await node.publish("ch", document(1), DELTA)
    await asyncio.sleep(0)  # fan-out happens at the end of the loop pass
    last = [t.frames[-1] for t in early + late]
    assert len({id(frame) for frame in last}) == 2  # delta for the early ones, whole for the late
    assert last[0] is last[1] is last[2] and last[3] is last[4]
    assert [p.delta for p in publications(late[0])] == [False]
    assert decoded(late[0]) == decoded(early[0])[1:]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_whole_data_when_the_publisher_asks_no_delta_or_the_patch_is_not_smaller(
    node: Node, protocol: ProtocolType
) -> None:
    delta = await subscriber(node, protocol, delta="fossil")
    await node.publish("ch", document(0), DELTA)
    await asyncio.sleep(0)  # fan-out happens at the end of the loop pass
    await node.publish("ch", document(1), PLAIN)
    await asyncio.sleep(0)  # fan-out happens at the end of the loop pass
    await node.publish("ch", b'"tiny"', DELTA)
    await asyncio.sleep(0)  # fan-out happens at the end of the loop pass
    await node.publish("ch", document(2), DELTA)
    await asyncio.sleep(0)  # fan-out happens at the end of the loop pass
    assert [p.delta for p in publications(delta)] == [False, False, False, False]
    assert decoded(delta) == [orjson.loads(d) for d in (document(0), document(1), b'"tiny"', document(2))]


async def test_json_delta_data_is_a_json_string(node: Node) -> None:
    delta = await subscriber(node, ProtocolType.JSON, delta="fossil")
    await node.publish("ch", b'{"a": 1}', DELTA)
    await asyncio.sleep(0)  # fan-out happens at the end of the loop pass
    line = frame_payload(delta.frames[0])
    assert orjson.loads(line)["push"]["pub"]["data"] == '{"a": 1}'


async def test_non_utf8_patch_falls_back_to_whole_data_on_json(node: Node) -> None:
    # "ж" and "з" share their first UTF-8 byte, so the patch between them inserts half a character:
    # not valid in a JSON string, so the data goes whole. "щ" shares nothing and gives a real delta.
    delta = await subscriber(node, ProtocolType.JSON, delta="fossil")
    texts = ["ж" * 60, "ж" * 30 + "з" + "ж" * 29, "ж" * 30 + "щ" + "ж" * 29]
    for text in texts:
        await node.publish("ch", orjson.dumps(text), DELTA)
        await asyncio.sleep(0)  # fan-out happens at the end of the loop pass
    assert [p.delta for p in publications(delta)] == [False, False, True]
    assert decoded(delta) == texts


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_recovered_publications_form_a_delta_chain(node: Node, protocol: ProtocolType) -> None:
    for version in range(3):
        await node.publish("ch", document(version), DELTA)
        await asyncio.sleep(0)  # fan-out happens at the end of the loop pass
    epoch = (await node.read_history("ch", HistoryQuery())).position.epoch
    plain = await subscriber(node, protocol, recover=True, offset=0, epoch=epoch)
    transport = RecordingTransport(protocol)
    client = Client(node, transport)
    await send(client, pb.Command(id=1, connect=pb.ConnectRequest()))
    for version in range(3, 6):
        await node.publish("ch", document(version), DELTA)
        await asyncio.sleep(0)  # fan-out happens at the end of the loop pass
    await send(
        client,
        pb.Command(
            id=2,
            subscribe=pb.SubscribeRequest(channel="ch", delta="fossil", recover=True, offset=1, epoch=epoch),
        ),
    )
    await node.publish("ch", document(6), DELTA)
    await asyncio.sleep(0)  # fan-out happens at the end of the loop pass
    reply = replies(transport)[1].subscribe
    assert reply.delta and reply.recovered
    assert [p.offset for p in publications(transport)] == [2, 3, 4, 5, 6, 7]
    assert [p.delta for p in publications(transport)] == [False, True, True, True, True, True]
    assert decoded(transport) == [orjson.loads(document(v)) for v in range(1, 7)]
    assert decoded(transport)[2:] == [orjson.loads(p.data) for p in publications(plain)]  # offsets 4-7


async def test_without_recovered_publications_the_next_one_is_whole(node: Node) -> None:
    await node.publish("ch", document(0), DELTA)
    await asyncio.sleep(0)  # fan-out happens at the end of the loop pass
    delta = await subscriber(node, ProtocolType.PROTOBUF, delta="fossil")
    await node.publish("ch", document(1), DELTA)
    await asyncio.sleep(0)  # fan-out happens at the end of the loop pass
    await node.publish("ch", document(2), DELTA)
    await asyncio.sleep(0)  # fan-out happens at the end of the loop pass
    assert [p.delta for p in publications(delta)] == [False, True]


def ticker(name: str) -> pb.FilterNode:
    return pb.FilterNode(key="ticker", cmp="eq", val=name)


async def publish_tickers(node: Node, names: str) -> None:
    for name in names:
        await node.publish(
            "ch",
            orjson.dumps({"t": name}),
            PublishOptions(history_size=100, history_ttl=300, tags={"ticker": name}),
        )
        await asyncio.sleep(0)  # fan-out happens at the end of the loop pass


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_tags_filter_delivers_matching_publications_and_keeps_the_position(
    node: Node, protocol: ProtocolType
) -> None:
    filtered = await subscriber(node, protocol, tf=ticker("A"))
    other = await subscriber(node, protocol, tf=ticker("A"))
    everything = await subscriber(node, protocol)
    await publish_tickers(node, "ABBABA")
    assert [p.offset for p in publications(filtered)] == [1, 4, 6]
    assert [p.tags["ticker"] for p in publications(filtered)] == ["A", "A", "A"]
    assert filtered.closed_with is None and len(replies(filtered)) == 3  # no unsubscribe: no gap
    assert [p.offset for p in publications(everything)] == [1, 2, 3, 4, 5, 6]
    assert all(a is b for a, b in zip(filtered.frames, other.frames, strict=True))
    assert filtered.frames[0] is everything.frames[0]  # one frame per group, filter or not


async def test_tags_filter_drops_recovered_publications(node: Node) -> None:
    await publish_tickers(node, "ABAB")
    epoch = (await node.read_history("ch", HistoryQuery())).position.epoch
    transport = await subscriber(
        node, ProtocolType.JSON, keep_reply=True, tf=ticker("B"), recover=True, offset=1, epoch=epoch
    )
    assert replies(transport)[0].subscribe.recovered
    await publish_tickers(node, "ABAAB")
    assert [p.offset for p in publications(transport)] == [2, 4, 6, 9]  # position kept past filtered ones


class RacingBroker(MemoryBroker):
    """Publishes ``late`` while the node reads history, so they reach the subscriber buffered."""

    def __init__(self) -> None:
        super().__init__()
        self.late = ""

    async def history(self, channel: str, query: HistoryQuery) -> HistoryResult:
        late, self.late = self.late, ""
        result = await super().history(channel, query)
        for name in late:
            await self.publish(
                channel,
                orjson.dumps({"t": name}),
                PublishOptions(history_size=100, history_ttl=300, tags={"ticker": name}, use_delta=True),
            )
        return result


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_buffered_publications_are_filtered_and_whole_for_delta(protocol: ProtocolType) -> None:
    broker = RacingBroker()
    node = Node(NodeConfig(ping_interval=0), hooks=DeltaHooks(), broker=broker)
    await node.start()
    await publish_tickers(node, "AB")
    epoch = (await node.read_history("ch", HistoryQuery())).position.epoch
    broker.late = "ABA"
    filtered = await subscriber(
        node, protocol, keep_reply=True, tf=ticker("A"), recover=True, offset=0, epoch=epoch
    )
    broker.late = "BB"
    delta = await subscriber(
        node, protocol, keep_reply=True, delta="fossil", recover=True, offset=0, epoch=epoch
    )
    await publish_tickers(node, "BA")
    # Recovered 1, buffered 3 and 5 (after the reply), live 9; the B ones never arrive, and no gap.
    assert [p.offset for p in publications(filtered)] == [1, 3, 5, 9]
    assert filtered.closed_with is None and len(replies(filtered)) == 4
    assert [p.offset for p in publications(delta)] == list(range(1, 10))
    assert decoded(delta) == [{"t": name} for name in "ABABABBBA"]
    await node.shutdown()


async def test_a_filtered_last_recovered_publication_does_not_look_like_a_gap(node: Node) -> None:
    await publish_tickers(node, "BA")
    epoch = (await node.read_history("ch", HistoryQuery())).position.epoch
    transport = await subscriber(node, ProtocolType.JSON, tf=ticker("B"), recover=True, offset=0, epoch=epoch)
    await publish_tickers(node, "B")
    assert [p.offset for p in publications(transport)] == [3]
    assert transport.closed_with is None and len(replies(transport)) == 1


async def test_delta_subscription_gets_every_live_publication_whatever_its_filter(node: Node) -> None:
    """Centrifugo v6.9.1, run side by side, sends a delta subscriber every live publication."""
    transport = await subscriber(node, ProtocolType.JSON, delta="fossil", tf=ticker("A"))
    await publish_tickers(node, "AB")
    assert [p.offset for p in publications(transport)] == [1, 2]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_delta_subscription_recovers_only_what_its_filter_accepts(
    node: Node, protocol: ProtocolType
) -> None:
    """As in Centrifugo: recovery applies the filter, and the delta chain runs over what it kept."""
    await publish_tickers(node, "ABA")
    epoch = (await node.read_history("ch", HistoryQuery())).position.epoch
    transport = await subscriber(
        node, protocol, keep_reply=True, delta="fossil", tf=ticker("A"), recover=True, offset=0, epoch=epoch
    )
    assert [p.offset for p in publications(transport)] == [1, 3]
    assert decoded(transport) == [{"t": "A"}, {"t": "A"}]


async def test_delta_does_not_lift_the_tags_filter_checks() -> None:
    """Without the hooks' permission, or with a malformed tree, a delta subscribe is refused too."""
    node = Node(NodeConfig(ping_interval=0), hooks=DeltaHooks())
    await node.start()
    t = RecordingTransport()
    client = Client(node, t)
    await send(client, pb.Command(id=1, connect=pb.ConnectRequest()))
    bad = pb.FilterNode(key="ticker", cmp="eq")
    await send(client, pb.Command(id=2, subscribe=pb.SubscribeRequest(channel="ch", delta="fossil", tf=bad)))
    assert json_messages(t)[-1] == {"id": 2, "error": {"code": 107, "message": "bad request"}}
    await node.shutdown()
    plain = Node(NodeConfig(ping_interval=0))
    await plain.start()
    t = RecordingTransport()
    client = Client(plain, t)
    await send(client, pb.Command(id=1, connect=pb.ConnectRequest()))
    await send(
        client, pb.Command(id=2, subscribe=pb.SubscribeRequest(channel="ch", delta="fossil", tf=ticker("A")))
    )
    assert json_messages(t)[-1] == {"id": 2, "error": {"code": 107, "message": "bad request"}}
    await plain.shutdown()


async def test_an_invalid_tags_filter_is_a_bad_request(node: Node) -> None:
    transport = RecordingTransport()
    client = Client(node, transport)
    await send(client, pb.Command(id=1, connect=pb.ConnectRequest()))
    await send(
        client,
        pb.Command(
            id=2, subscribe=pb.SubscribeRequest(channel="ch", tf=pb.FilterNode(key="ticker", cmp="eq"))
        ),
    )
    assert replies(transport)[1].error.code == codes.ERROR_BAD_REQUEST.code
    assert not client.is_subscribed("ch")


async def test_tags_filter_needs_the_hooks_permission() -> None:
    node = Node(NodeConfig(ping_interval=0))
    await node.start()
    t = RecordingTransport()
    client = Client(node, t)
    await send(client, pb.Command(id=1, connect=pb.ConnectRequest()))
    await send(client, pb.Command(id=2, subscribe=pb.SubscribeRequest(channel="ch", tf=ticker("A"))))
    assert json_messages(t)[-1] == {"id": 2, "error": {"code": 107, "message": "bad request"}}
    await node.shutdown()
