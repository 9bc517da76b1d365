"""Engines over TLS with real servers: rotary reaches redis-server (and its sentinels) and
nats-server on their TLS ports, presenting a client certificate they require, with the PEM
material spelled each way Centrifugo allows (text, base64, path) and ``server_name`` naming the
certificate's host (https://centrifugal.dev/docs/server/engines#redis-engine,
https://centrifugal.dev/docs/server/engines#nats-broker).
"""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DEFAULT_CONFIG, RotaryServer, merged, running_rotary, sign_token, unique_channel
from helpers.certs import TestCA
from helpers.env import IN_CI, free_port, require_binary
from helpers.nats_server import nats_server
from helpers.redis_servers import RedisProcess, ask

pytestmark = pytest.mark.compat

SERVER_NAME = "engine.test"
"""The only name in the servers' certificates: rotary verifies it through ``server_name``."""


def redis_has_tls() -> None:
    """Skips (fails under CI) unless redis-server was built with TLS: asked to listen with TLS and
    no usable certificate, a TLS build reaches its TLS setup and says it failed."""
    probe = subprocess.run(
        [require_binary("redis-server"), "--port", "0", "--tls-port", "1", "--tls-cert-file", "/nonexistent"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if "Failed to configure TLS" not in probe.stdout + probe.stderr:
        message = f"redis-server has no TLS support: {(probe.stdout + probe.stderr).strip()[-200:]}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def client_tls(ca: TestCA, directory: Path) -> dict[str, Any]:
    """A client TLS section using all three PEM spellings at once."""
    issued = ca.issue("rotary", client=True)
    return {
        "enabled": True,
        "cert_pem": issued.cert_pem.decode(),
        "key_pem": base64.b64encode(issued.key_pem).decode(),
        "server_ca_pem": str(ca.write(directory)),
        "server_name": SERVER_NAME,
    }


def redis_tls_args(ca: TestCA, directory: Path, name: str) -> tuple[list[str], int]:
    cert, key = ca.issue(name, (SERVER_NAME,), client=True, server=True).write(directory, name)
    tls_port = free_port()
    args = [
        "--tls-port",
        str(tls_port),
        "--tls-cert-file",
        str(cert),
        "--tls-key-file",
        str(key),
        "--tls-ca-cert-file",
        str(ca.write(directory)),
        "--tls-auth-clients",
        "yes",
    ]
    return args, tls_port


@pytest.fixture
def processes() -> Iterator[list[RedisProcess]]:
    started: list[RedisProcess] = []
    yield started
    for process in started:
        process.remove()


async def publish_and_receive(server: RotaryServer, sdk_clients: Any) -> None:
    """An API publication reaches a subscriber through the broker; history comes from the engine."""
    channel = unique_channel()
    sdk = sdk_clients(server, token=sign_token({"sub": "engine-tls"}))
    await sdk.client.connect()
    await sdk.client.ready(timeout=10)
    sub, events = sdk.subscription(channel)
    await sub.subscribe()
    await sub.ready(timeout=10)
    await server.api("publish", {"channel": channel, "data": {"over": "tls"}})
    ctx = await events.next("on_publication", timeout=10)
    assert ctx.pub.data == {"over": "tls"}


async def test_redis_over_tls(tmp_path: Path, processes: list[RedisProcess], sdk_clients: Any) -> None:
    redis_has_tls()
    ca = TestCA()
    args, tls_port = redis_tls_args(ca, tmp_path / "redis", "redis")
    redis = RedisProcess.create(*args)
    processes.append(redis)
    redis.start()
    engine = {
        "type": "redis",
        "redis": {"address": [f"127.0.0.1:{tls_port}"], "tls": client_tls(ca, tmp_path)},
    }
    with running_rotary(tmp_path / "rotary", merged(DEFAULT_CONFIG, {"engine": engine})) as server:
        await publish_and_receive(server, sdk_clients)
        history = await server.api("history", {"channel": "chat:none", "limit": 1})
        assert "result" in history


async def test_redis_sentinel_over_tls(
    tmp_path: Path, processes: list[RedisProcess], sdk_clients: Any
) -> None:
    redis_has_tls()
    ca = TestCA()
    master_args, master_tls_port = redis_tls_args(ca, tmp_path / "master", "master")
    master = RedisProcess.create(*master_args)
    processes.append(master)
    master.start()
    sentinel_args, sentinel_tls_port = redis_tls_args(ca, tmp_path / "sentinel", "sentinel")
    cert, key = ca.issue("sentinel-client", client=True).write(tmp_path / "sentinel", "as-client")
    sentinel_config = (
        f"sentinel monitor rotary 127.0.0.1 {master_tls_port} 1\n"
        "tls-replication yes\n"
        f"tls-client-cert-file {cert}\ntls-client-key-file {key}\n"
        f"sentinel resolve-hostnames yes\n"
    )
    sentinel = RedisProcess.create(*sentinel_args, sentinel_config=sentinel_config)
    processes.append(sentinel)
    sentinel.start()
    tls = client_tls(ca, tmp_path)
    redis = {
        "sentinel_address": [f"127.0.0.1:{sentinel_tls_port}"],
        "sentinel_master_name": "rotary",
        "sentinel_tls": tls,
        "tls": tls,
    }
    engine = {"type": "redis", "redis": redis}
    with running_rotary(tmp_path / "rotary", merged(DEFAULT_CONFIG, {"engine": engine})) as server:
        await publish_and_receive(server, sdk_clients)


async def test_redis_cluster_over_tls(
    tmp_path: Path, processes: list[RedisProcess], sdk_clients: Any
) -> None:
    """Nodes speak TLS to clients and on their bus (``tls-cluster``); CLUSTER SLOTS over TLS
    names their TLS ports, which rotary dials with the same context."""
    redis_has_tls()
    ca = TestCA()
    tls_ports = []
    for number in range(3):
        args, tls_port = redis_tls_args(ca, tmp_path / f"node{number}", f"node{number}")
        node = RedisProcess.create(
            *args,
            "--tls-cluster",
            "yes",
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            str(free_port()),
            "--cluster-config-file",
            "nodes.conf",
        )
        processes.append(node)
        node.start()
        tls_ports.append(tls_port)
    subprocess.run(
        [
            require_binary("redis-cli"),
            "--cluster",
            "create",
            *(node.address for node in processes),
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    for node in processes:
        wait_for(lambda node=node: b"cluster_state:ok" in ask(node.port, "CLUSTER", "INFO"), "cluster state")
    redis = {"cluster_address": [f"127.0.0.1:{tls_ports[0]}"], "tls": client_tls(ca, tmp_path)}
    with running_rotary(
        tmp_path / "rotary", merged(DEFAULT_CONFIG, {"engine": {"type": "redis", "redis": redis}})
    ) as server:
        for _ in range(3):  # channels land on different nodes
            await publish_and_receive(server, sdk_clients)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout}s"
        time.sleep(0.05)


async def test_nats_over_tls(tmp_path: Path, sdk_clients: Any) -> None:
    ca = TestCA()
    cert, key = ca.issue("nats", (SERVER_NAME,)).write(tmp_path / "nats", "nats")
    config = tmp_path / "nats.conf"
    config.write_text(
        f'tls {{\n  cert_file: "{cert}"\n  key_file: "{key}"\n  ca_file: "{ca.write(tmp_path)}"\n'
        "  verify: true\n}\n"
    )
    with nats_server("-c", str(config)) as nats:
        broker = {"enabled": True, "type": "nats", "nats": {"url": nats.url, "tls": client_tls(ca, tmp_path)}}
        overrides = {
            "broker": broker,
            "channel": {"namespaces": [{"name": "chat", "allow_subscribe_for_client": True}]},
        }
        with running_rotary(tmp_path / "rotary", merged(DEFAULT_CONFIG, overrides)) as server:
            await publish_and_receive(server, sdk_clients)
