"""``opentelemetry.enabled``: refused without the ``otel`` extra or with an exporter protocol
Centrifugo does not know, and nothing of OpenTelemetry loaded while it is off.
See https://centrifugal.dev/docs/server/observability#opentelemetry.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from rotary.server.config.schema import Config
from rotary.server.config.validate import validate


def traced() -> Config:
    config = Config()
    return replace(config, opentelemetry=replace(config.opentelemetry, enabled=True, api=True))


def test_enabled_with_the_packages_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_PROTOCOL", raising=False)
    assert validate(traced()) == []


def test_refused_without_the_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if not installed, whatever an earlier test of this process imported already.
    for name in ("opentelemetry", "opentelemetry.sdk"):
        monkeypatch.setitem(sys.modules, name, None)
    problems = validate(traced())
    assert len(problems) == 1
    assert problems[0].startswith("opentelemetry.enabled: tracing needs the packages opentelemetry-sdk")
    assert "rotary[otel]" in problems[0]


def test_refused_with_an_unknown_exporter_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    assert validate(traced()) == [
        "opentelemetry.enabled: OTEL_EXPORTER_OTLP_PROTOCOL=http/json is not supported "
        "(use http/protobuf or grpc)"
    ]


def test_google_cloud_adc_auth_is_refused() -> None:
    config = traced()
    config = replace(config, opentelemetry=replace(config.opentelemetry, google_cloud_adc_auth=True))
    assert [p.split(":")[0] for p in validate(config)] == ["opentelemetry.google_cloud_adc_auth"]


def test_nothing_of_opentelemetry_is_imported_while_off() -> None:
    """A whole server built (API, metrics, every route) and an API call made with tracing off."""
    script = """
import asyncio, sys
from dataclasses import replace
from rotary.server.app import build_server
from rotary.server.api.executor import ApiExecutor
from rotary.server.api.schema import InfoRequest
from rotary.server.channels import ChannelRules
from rotary.server.config.schema import Config

async def main():
    config = Config()
    config = replace(config, prometheus=replace(config.prometheus, enabled=True))
    server = build_server(config)
    await ApiExecutor(server.node, config, ChannelRules(config.channel)).execute("info", InfoRequest())
    await server.verifier.close()

asyncio.run(main())
print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
