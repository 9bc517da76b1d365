"""The config every API test server runs with: namespaces that cover each API rule, a token key for
WebSocket clients and an API key."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from helpers.server import InProcessServer

from rotary.server.config.schema import ClientConfig, Config, TokenConfig
from rotary.server.config.schema_channels import ChannelConfig, ChannelOptions, NamespaceConfig
from rotary.server.config.schema_transports import HttpAPIConfig

SECRET = "api-tests-hmac-secret-key-of-at-least-32-bytes"
API_KEY = "api-tests-key"

CHANNELS = ChannelConfig(
    without_namespace=ChannelOptions(allow_subscribe_for_client=True),
    namespaces=(
        NamespaceConfig(name="hist", history_size=10, history_ttl=300.0, allow_subscribe_for_client=True),
        NamespaceConfig(name="pres", presence=True, allow_subscribe_for_client=True),
        NamespaceConfig(name="json", publication_data_format="json"),
        NamespaceConfig(name="bin", publication_data_format="binary", history_size=10, history_ttl=300.0),
        NamespaceConfig(name="map", subscription_type="map"),
    ),
)

StackFactory = Callable[..., Awaitable[InProcessServer]]


def make_config(**http_api: Any) -> Config:
    """The test config; keyword arguments replace fields of ``http_api``."""
    return Config(
        client=ClientConfig(token=TokenConfig(hmac_secret_key=SECRET)),
        http_api=dataclasses.replace(HttpAPIConfig(key=API_KEY), **http_api),
        channel=CHANNELS,
    )
