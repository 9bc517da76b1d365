"""Keys rotary reads but does not implement refuse the start, all at once, each named by its path."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from typing import Any

import pytest

from rotary.server.config.convert import Report, build
from rotary.server.config.fields import field_types, item_type
from rotary.server.config.schema import ChannelConfig, ClientConfig, Config, NamespaceConfig
from rotary.server.config.schema_transports import TLSConfig
from rotary.server.config.unbuilt import LIST_STEP, UNBUILT
from rotary.server.config.validate import validate


def test_every_table_path_is_a_schema_key() -> None:
    for entry in UNBUILT:
        cls: Any = Config
        for step in entry.path.split("."):
            name = step.removesuffix(LIST_STEP)
            assert name in {f.name for f in dataclasses.fields(cls)}, entry.path
            tp = field_types(cls)[name]
            cls = item_type(tp) if step.endswith(LIST_STEP) else tp


def test_defaults_refuse_nothing() -> None:
    assert validate(Config()) == []


def test_every_refusal_in_one_pass_with_its_path() -> None:
    namespaces = (
        NamespaceConfig(
            name="maps", subscription_type="map", map=replace(NamespaceConfig().map, mode="ephemeral")
        ),
        NamespaceConfig(name="streams", subscription_type="stream"),
    )
    config = Config(
        client=ClientConfig(concurrency=4),
        channel=ChannelConfig(namespaces=namespaces),
    )
    config = replace(
        config,
        grpc_api=replace(config.grpc_api, tls=TLSConfig(insecure_skip_verify=True)),
        websocket=replace(config.websocket, read_buffer_size=4096),
        prometheus=replace(config.prometheus, enabled=True, native_histograms=True),
        graphite=replace(config.graphite, enabled=True),
        broker=replace(config.broker, nats=replace(config.broker.nats, allow_wildcards=True)),
    )
    keys = [problem.split(":")[0] for problem in validate(config)]
    assert keys == [
        "broker.nats.allow_wildcards",
        "client.concurrency",
        "channel.namespaces[0].subscription_type",
        "websocket.read_buffer_size",
        "grpc_api.tls.insecure_skip_verify",
        "prometheus.native_histograms",
        "graphite.enabled",
    ]


@pytest.mark.parametrize(
    "client",
    [ClientConfig(connection_rate_limit=10), ClientConfig(connection_limit=10), ClientConfig(insecure=True)],
)
def test_implemented_keys_pass(client: ClientConfig) -> None:
    assert validate(Config(client=client)) == []


def test_websocket_compression_is_built() -> None:
    config = Config()
    compressing = replace(
        config,
        websocket=replace(config.websocket, compression=True, compression_min_size=128, compression_level=5),
        uni_websocket=replace(config.uni_websocket, compression=True),
    )
    assert validate(compressing) == []


NON_DEFAULT: dict[Any, Any] = {bool: True, int: 7, float: "5s", str: "redis"}
"""A value unlike every default of the table's keys, as a config file spells it, by key type."""


def file_tree(path: str) -> dict[str, Any]:
    """A config file tree setting the key at ``path`` (``[]`` steps get one list item) off its default."""
    cls: Any = Config
    tree: dict[str, Any] = {}
    node = tree
    steps = path.split(".")
    for index, step in enumerate(steps):
        name = step.removesuffix(LIST_STEP)
        tp = field_types(cls)[name]
        last = index == len(steps) - 1
        if last and item_type(tp) is not None:  # a list key: one item
            node[name] = [{"name": "px", "endpoint": "http://127.0.0.1:1"}]
        elif last:
            node[name] = NON_DEFAULT[tp]
        elif step.endswith(LIST_STEP):
            item: dict[str, Any] = {"name": "item"}
            node[name] = [item]
            node, cls = item, item_type(tp)
        else:
            node = node.setdefault(name, {})
            cls = tp
    return tree


@pytest.mark.parametrize("entry", UNBUILT, ids=lambda entry: entry.path)
def test_each_table_key_is_refused_by_its_path(entry: Any) -> None:
    report = Report()
    config = build(Config, file_tree(entry.path), "", report)
    assert report.problems == []
    expected = entry.path.replace(LIST_STEP, "[0]")
    assert any(problem.startswith(f"{expected}: ") for problem in validate(config)), expected
