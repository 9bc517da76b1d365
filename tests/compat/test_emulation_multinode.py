"""Emulated connections across nodes: commands posted to another node's emulation endpoint reach the
session on the node that owns it, through the control plane (Redis here), with no sticky sessions,
as in Centrifugo (https://centrifugal.dev/docs/transports/http_stream: "emulation requests may
come to any node").
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from emulated import EmulatedClient
from helpers import redis_servers
from helpers.cluster import (
    API_KEY,
    SECRET,
    RotaryNode,
    cluster_nodes,
    eventually,
    redis_config,
    rotary_nodes,
    token,
)
from test_sdk_state_js import SCRIPT_TIMEOUT, SCRIPTS, script_env

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RotaryNode]]:
    """Two nodes with HTTP streaming and SSE on one redis-server, each knowing the other."""
    redis = redis_servers.start_standalone()
    try:
        config = redis_config(redis.addresses[0], redis_servers.unique_prefix())
        config.update({"http_stream": {"enabled": True}, "sse": {"enabled": True}})
        with rotary_nodes(tmp_path_factory.mktemp("emulation"), config, 2) as started:
            yield started
    finally:
        redis.stop()


async def know_each_other(nodes: list[RotaryNode]) -> None:
    for node in nodes:

        async def sees_all(node: RotaryNode = node) -> bool:
            return len(await cluster_nodes(node)) == len(nodes)

        await eventually(sees_all, f"node {node.port} knows every node")


@pytest.mark.parametrize("transport", ["http_stream", "sse"])
async def test_commands_posted_to_another_node_reach_the_session(
    nodes: list[RotaryNode], transport: str
) -> None:
    await know_each_other(nodes)
    owner, other = nodes
    channel = "chat:" + uuid.uuid4().hex[:12]
    client = await EmulatedClient.open(
        owner.http_url, transport, {"token": token("ann")}, emulation_url=f"{other.http_url}/emulation"
    )
    try:
        assert "subscribe" in await client.command(subscribe={"channel": channel})
        await other.api("publish", {"channel": channel, "data": {"n": 1}})
        push = await client.until(lambda m: "pub" in m.get("push", {}), "the publication")
        assert push["push"]["pub"]["data"] == {"n": 1}
        assert "publish" in await client.command(publish={"channel": channel, "data": {"n": 2}})
        presence = await client.command(presence={"channel": channel})
        assert [info["user"] for info in presence["presence"]["presence"].values()] == ["ann"]
        # A session its node no longer has: accepted and dropped there (Centrifugo's 204).
        await owner.api("disconnect", {"user": "ann"})
        await client.end()
        assert await client.send(presence={"channel": channel}) == 204
    finally:
        await client.close()


def test_the_sdk_with_its_emulation_endpoint_on_another_node(node: str, nodes: list[RotaryNode]) -> None:
    asyncio.run(know_each_other(nodes))
    owner, other = nodes
    for transport, protocol in (("http_stream", "json"), ("http_stream", "protobuf"), ("sse", "json")):
        for script, expected in (
            ("connect_jwt", {"state": "connected"}),
            ("client_publish", {"data": {"text": "hi"}, "user": "writer", "fromWriter": True}),
        ):
            environment = script_env(protocol, owner.ws_url, owner.http_url, SECRET, API_KEY)
            environment |= {
                "ROTARY_TRANSPORT": transport,
                "ROTARY_EMULATION_URL": f"{other.http_url}/emulation",
            }
            done = subprocess.run(
                [node, str(SCRIPTS / f"{script}.mjs")],
                check=False,
                capture_output=True,
                text=True,
                env=environment,
                timeout=SCRIPT_TIMEOUT,
            )
            assert done.returncode == 0, (
                f"{script} over {transport}/{protocol}:\n{done.stderr}\n{done.stdout}"
            )
            assert json.loads(done.stdout.strip().splitlines()[-1]) == expected, (script, transport, protocol)
