"""What ``prometheus.enabled`` costs the fan-out, measured in one process without sockets.

fanout.py compares rotary with and without metrics end to end, but on a shared host its rows move
by more than the few percent in question. This script measures only the node's side: two Nodes (one
with ``Metrics``, one without) with N JSON subscribers each, whose transports keep nothing, and
publications delivered one loop pass at a time (steady) or ``--burst`` per pass. Rounds alternate
the two nodes, and each reports the process CPU time per delivery; the ratio of the medians is the
price of counting. ``paired`` is the median of each round's on/off ratio: on a host whose load
drifts during the run, the two measurements of one round share the same conditions. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import orjson

from rotary.engines.base import PublishOptions
from rotary.node.client import Client
from rotary.node.metrics import Metrics
from rotary.node.node import Node, NodeConfig
from rotary.protocol import codes
from rotary.protocol.codec import ProtocolType
from rotary.protocol.framing import ws_frame


class NullTransport:
    """A WebSocket-shaped transport that frames like the real one and drops what it is given."""

    name = "websocket"
    unidirectional = False
    protocol = ProtocolType.JSON
    framing = "ws-text"

    def frame(self, payload: bytes) -> bytes:
        return ws_frame(payload, False)

    def write(self, payload: bytes) -> None:
        pass

    def write_prepared(self, frame: bytes) -> int:
        return 0

    def close(self, disconnect: codes.Disconnect) -> int:
        return 0

    def abort(self) -> None:
        pass


async def subscribed_node(subscribers: int, metrics: Metrics | None) -> Node:
    node = Node(NodeConfig(ping_interval=0, presence_update_interval=0), metrics=metrics)
    await node.start()
    for _ in range(subscribers):
        client = Client(node, NullTransport())
        await client.handle_frame(orjson.dumps({"id": 1, "connect": {}}))
        await client.handle_frame(orjson.dumps({"id": 2, "subscribe": {"channel": "bench"}}))
    return node


async def cpu_per_delivery(node: Node, subscribers: int, passes: int, burst: int) -> float:
    """Process CPU microseconds per delivery over ``passes`` loop passes of ``burst`` publications."""
    options = PublishOptions()
    started = time.process_time()
    for i in range(passes):
        for _ in range(burst):
            await node.publish("bench", b'{"t":%d}' % i, options)
        await asyncio.sleep(0)
    return (time.process_time() - started) * 1e6 / (passes * burst * subscribers)


async def main(args: argparse.Namespace) -> None:
    print(f"{'N':>6} {'burst':>5} {'off us/deliv':>13} {'on us/deliv':>12} {'on/off':>7} {'paired':>7}")
    for subscribers in args.subscribers:
        off = await subscribed_node(subscribers, None)
        on = await subscribed_node(subscribers, Metrics())
        for burst in (1, args.burst):
            passes = max(1, args.deliveries // (subscribers * burst))
            figures: dict[str, list[float]] = {"off": [], "on": []}
            for _ in range(args.rounds):
                for name, node in (("off", off), ("on", on)):
                    figures[name].append(await cpu_per_delivery(node, subscribers, passes, burst))
            a, b = statistics.median(figures["off"]), statistics.median(figures["on"])
            paired = statistics.median(
                on / off for on, off in zip(figures["on"], figures["off"], strict=True)
            )
            print(
                f"{subscribers:>6} {burst:>5} {a:>13.3f} {b:>12.3f} {b / a:>6.3f}x {paired:>6.3f}x",
                flush=True,
            )
        await off.shutdown()
        await on.shutdown()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--burst", type=int, default=10, help="publications per loop pass in the burst rows")
    parser.add_argument("--deliveries", type=int, default=500_000, help="deliveries per measurement")
    parser.add_argument("--rounds", type=int, default=9, help="alternating measurements per node")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
