"""ACME certificates (``http_server.tls_autocert``) from Debian's pebble test CA, which validates
the HTTP-01 challenge for real against rotary's challenge server: the first handshake for a
whitelisted name starts the order, the next ones get the issued certificate, centrifuge-python
connects over ``wss://`` with it, a restart serves it from ``cache_dir``, and it is renewed once
the (injected) clock puts it within 30 days of expiry
(https://centrifugal.dev/docs/server/tls#automatic-certificates).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import centrifuge
import pytest
from conftest import DEFAULT_CONFIG, EventLog, merged, sign_token
from cryptography import x509
from helpers.env import free_port
from helpers.pebble import Pebble, running_pebble

from rotary.server.app import Server, StartError, build_server, serve
from rotary.server.config.convert import Report, build
from rotary.server.config.schema import Config
from rotary.server.config.validate import validate
from rotary.server.tls.acme import DIRECTORY_ENV

pytestmark = pytest.mark.compat

HOST = "localhost"
"""The name pebble validates: its resolver sends the HTTP-01 request to 127.0.0.1."""
WAIT = 10.0


class WallClock:
    """The clock certificate renewals are decided by; tests move it instead of waiting."""

    def __init__(self) -> None:
        self.now = datetime.datetime.now(datetime.UTC).timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pebble(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pebble]:
    with running_pebble(tmp_path / "pebble") as running:
        monkeypatch.setenv(DIRECTORY_ENV, running.directory_url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(running.ca_file))  # pebble's API certificate
        yield running


@dataclass
class Running:
    server: Server
    port: int
    clock: WallClock


def autocert_config(pebble: Pebble, cache_dir: Path, port: int, whitelist: list[str]) -> Config:
    autocert = {
        "enabled": True,
        "host_whitelist": whitelist,
        "cache_dir": str(cache_dir),
        "email": "ops@example.com",
        "http": True,
        "http_addr": f"127.0.0.1:{pebble.http_port}",
    }
    raw = merged(
        DEFAULT_CONFIG, {"http_server": {"address": "127.0.0.1", "port": port, "tls_autocert": autocert}}
    )
    config = config_of(raw)
    assert validate(config) == []
    return config


def config_of(raw: dict[str, Any]) -> Config:
    report = Report()
    config: Config = build(Config, raw, "", report)
    assert report.problems == []
    return config


@contextlib.asynccontextmanager
async def serving(
    pebble: Pebble, cache_dir: Path, whitelist: tuple[str, ...] = (HOST,)
) -> AsyncIterator[Running]:
    """rotary's own ``serve`` in this loop, with the injected wall clock."""
    port = free_port()
    clock = WallClock()
    server = build_server(autocert_config(pebble, cache_dir, port, list(whitelist)), wall_clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(server, stop))
    async with asyncio.timeout(WAIT):
        while True:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            await asyncio.sleep(0.02)
    try:
        yield Running(server, port, clock)
    finally:
        stop.set()
        await task


def trusting(pebble: Pebble) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=pebble.roots_pem().decode())


async def handshake(port: int, context: ssl.SSLContext, name: str = HOST) -> x509.Certificate:
    """The certificate the server presents for ``name`` (verified by ``context``)."""
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=name)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    return x509.load_der_x509_certificate(der)


async def test_certificate_issued_over_http01_served_cached_and_renewed(
    pebble: Pebble, tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    async with serving(pebble, cache_dir) as running:
        autocert = running.server.autocert
        assert autocert is not None and autocert.certificate(HOST) is None
        context = trusting(pebble)
        with pytest.raises(
            (ssl.SSLError, ConnectionError)
        ):  # no certificate yet: this handshake starts the order
            await handshake(running.port, context)
        await asyncio.wait_for(autocert.obtain(HOST), WAIT * 3)  # the order already under way
        first = await handshake(running.port, context)
        names = first.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.DNSName) == [HOST]
        assert (cache_dir / HOST).is_file() and (cache_dir / "acme_account+key").is_file()

        with pytest.raises(
            (ssl.SSLError, ConnectionError)
        ):  # a name off the whitelist gets nothing, and no order
            await handshake(running.port, ssl._create_unverified_context(), "other.localhost")
        assert autocert.certificate("other.localhost") is None

        events = EventLog()
        client = centrifuge.Client(
            f"wss://{HOST}:{running.port}/connection/websocket",
            events=events,
            token=sign_token({"sub": "acme"}),
            ssl_context=context,
            proxy=None,
        )
        await client.connect()
        await client.ready(timeout=WAIT)
        await client.disconnect()

        await autocert.renew_due()  # years left: nothing to do
        assert (await handshake(running.port, context)).serial_number == first.serial_number
        expiry = first.not_valid_after_utc.timestamp()
        running.clock.now = expiry - datetime.timedelta(days=29).total_seconds()
        await asyncio.wait_for(autocert.renew_due(), WAIT * 3)
        renewed = await handshake(running.port, context)
        assert renewed.serial_number != first.serial_number

    async with serving(pebble, cache_dir) as restarted:  # served from the cache, without an order
        assert restarted.server.autocert is not None
        assert (await handshake(restarted.port, context)).serial_number == renewed.serial_number


async def test_failed_order_is_not_retried_on_every_handshake(pebble: Pebble, tmp_path: Path) -> None:
    """Without a whitelist any name may be ordered (as in Centrifugo); one the CA cannot validate
    fails, and handshakes for it start no new order until a minute has passed."""
    name = "unreachable.invalid"
    unverified = ssl._create_unverified_context()
    async with serving(pebble, tmp_path / "cache", whitelist=()) as running:
        autocert = running.server.autocert
        assert autocert is not None
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await handshake(running.port, unverified, name)
        order = autocert.pending(name)
        assert order is not None
        await asyncio.wait_for(order, WAIT * 3)
        assert autocert.certificate(name) is None
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await handshake(running.port, unverified, name)
        assert autocert.pending(name) is None
        running.clock.now += 61
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await handshake(running.port, unverified, name)
        assert autocert.pending(name) is not None


def test_unusable_cache_dir_refuses_the_start(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    autocert = {"enabled": True, "http": True, "cache_dir": str(tmp_path / "file" / "cache")}
    config = config_of(merged(DEFAULT_CONFIG, {"http_server": {"tls_autocert": autocert}}))
    with pytest.raises(StartError, match=r"^http_server.tls_autocert.cache_dir: cannot use"):
        build_server(config)


def test_tls_alpn_challenge_and_bad_address_refused() -> None:
    autocert = {"enabled": True, "http": False, "http_addr": "nowhere"}
    problems = validate(config_of(merged(DEFAULT_CONFIG, {"http_server": {"tls_autocert": autocert}})))
    assert [p.split(":")[0] for p in problems] == [
        "http_server.tls_autocert.http",
        "http_server.tls_autocert.http_addr",
    ]
