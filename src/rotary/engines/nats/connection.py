"""Connections to NATS shared by the broker and the controller: options from config, subjects,
reconnection with backoff, and NATS failures turned into EngineError.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import nats.errors
from nats.aio.client import Client

from rotary.engines.base import (
    EngineError,
)

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-:/@=+,;!~#$&]")
"""Characters left as they are in a subject token; everything else (the escape ``%`` too) is escaped."""

FAILURES = (nats.errors.Error, OSError, asyncio.TimeoutError)

DEFAULT_IDEMPOTENT_RESULT_TTL = 300.0
"""Centrifugo remembers an idempotency key for 5 minutes when the publish names no TTL."""


def escape(name: str) -> str:
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), name)


def channel_subject(prefix: str, channel: str) -> str:
    """The subject a channel travels on: one token per channel, so no two channels share a subject."""
    return f"{prefix}.client.{escape(channel)}"


class _TlsSettings(Protocol):
    @property
    def enabled(self) -> bool: ...


class _RawModeSettings(Protocol):
    @property
    def enabled(self) -> bool: ...


class NatsBrokerSettings(Protocol):
    """The ``broker.nats`` config section, as far as this broker reads it."""

    @property
    def url(self) -> str: ...
    @property
    def prefix(self) -> str: ...
    @property
    def dial_timeout(self) -> float: ...
    @property
    def write_timeout(self) -> float: ...
    @property
    def allow_wildcards(self) -> bool: ...
    @property
    def tls(self) -> _TlsSettings: ...
    @property
    def raw_mode(self) -> _RawModeSettings: ...


@dataclass(frozen=True, slots=True)
class NatsOptions:
    """How to reach NATS. Defaults are Centrifugo's ``broker.nats`` defaults.

    ``dial_timeout`` bounds the first connection, retried until then; ``write_timeout`` bounds a flush of a
    full outgoing buffer and a round trip. After a lost connection the client retries forever,
    waiting from ``reconnect_min_delay`` up to ``reconnect_max_delay`` (doubling, with jitter).
    """

    url: str = "nats://localhost:4222"
    prefix: str = "centrifugo"
    dial_timeout: float = 1.0
    write_timeout: float = 1.0
    tls: ssl.SSLContext | None = None
    tls_server_name: str = ""
    """The name the server's certificate is verified against; "" for the URL's host."""
    name: str = "rotary"
    reconnect_min_delay: float = 0.05
    reconnect_max_delay: float = 5.0

    @classmethod
    def from_config(
        cls, config: NatsBrokerSettings, *, tls: ssl.SSLContext | None = None, tls_server_name: str = ""
    ) -> NatsOptions:
        """Options from ``broker.nats``; the caller builds ``tls`` from ``broker.nats.tls`` when enabled.

        Raises ValueError for what this broker does not implement, rather than run differently
        from what the config asks.
        """
        if config.raw_mode.enabled:
            raise ValueError("broker.nats.raw_mode is not supported")
        if config.allow_wildcards:
            raise ValueError("broker.nats.allow_wildcards is not supported")
        if config.tls.enabled and tls is None:
            raise ValueError("broker.nats.tls is enabled: pass the SSL context built from it")
        return cls(
            url=config.url,
            prefix=config.prefix,
            dial_timeout=config.dial_timeout,
            write_timeout=config.write_timeout,
            tls=tls,
            tls_server_name=tls_server_name,
        )


@contextlib.contextmanager
def as_engine_error(doing: str) -> Iterator[None]:
    try:
        yield
    except FAILURES as exc:
        raise EngineError(f"nats: {doing}: {exc!r}") from exc


class Connection:
    """One nats-py client as brokers need it: retry forever once up, fail fast while down.

    nats-py would buffer publishes during a reconnect and deliver them late; both users here
    prefer an immediate EngineError, as Centrifugo's NATS broker gets by disabling that buffer.
    """

    def __init__(self, options: NatsOptions, role: str, on_lost: Callable[[], None] | None = None) -> None:
        self._options = options
        self._role = role
        self._client: Client | None = None
        self._on_lost = on_lost
        """Called when an established connection breaks, before nats-py tries to reconnect."""

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    async def open(self) -> None:
        if self._client is not None:
            return
        client = Client()
        try:
            # Told to reconnect forever, nats-py would retry the first connection forever as well.
            async with asyncio.timeout(self._options.dial_timeout):
                await client.connect(**self._connect_options())
        except BaseException as exc:
            await client.close()
            if isinstance(exc, FAILURES):
                raise EngineError(f"nats: cannot connect to {self._options.url}: {exc!r}") from exc
            raise
        self._client = client

    def require(self) -> Client:
        """The client, if it can take a command right now."""
        client = self._client
        if client is None or client.is_closed:
            raise EngineError(f"nats {self._role}: not started")
        if not client.is_connected:
            raise EngineError(f"nats {self._role}: disconnected from {self._options.url}")
        return client

    async def round_trip(self) -> None:
        """Returns once NATS has processed every command this client sent before the call."""
        client = self.require()
        with as_engine_error("round trip"):
            # nats-py writes its PING straight to the socket, ahead of commands still queued for
            # its flusher task; only a PING sent with nothing queued proves everything arrived.
            while True:
                nothing_queued = client.pending_data_size == 0
                await client.flush(timeout=self._options.write_timeout)  # type: ignore[arg-type]
                if nothing_queued:
                    return

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def _connect_options(self) -> dict[str, Any]:
        return {
            "servers": [self._options.url],
            "name": f"{self._options.name} {self._role}",
            "connect_timeout": self._options.dial_timeout,
            "flush_timeout": self._options.write_timeout,
            "tls": self._options.tls,
            "tls_hostname": self._options.tls_server_name or None,
            "allow_reconnect": True,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": self._options.reconnect_min_delay,
            "reconnect_to_server_handler": self._next_attempt,
            "error_cb": self._on_error,
            "disconnected_cb": self._on_disconnected,
            "reconnected_cb": self._on_reconnected,
        }

    def _next_attempt(self, servers: list[Any], _info: dict[str, Any]) -> tuple[None, float]:
        """nats-py waits a fixed time between attempts; this doubles it up to a ceiling instead."""
        failures = min(servers[0].reconnects if servers else 0, 30)
        delay = min(self._options.reconnect_max_delay, self._options.reconnect_min_delay * 2**failures)
        return None, delay * random.uniform(0.5, 1.0)

    async def _on_error(self, error: Exception) -> None:
        # Failed attempts of the first connection end up in open()'s EngineError anyway.
        level = logging.WARNING if self._client is not None else logging.DEBUG
        log.log(level, "nats %s: %r", self._role, error)

    async def _on_disconnected(self) -> None:
        if self._client is not None and not self._client.is_closed:
            log.warning("nats %s: disconnected from %s, reconnecting", self._role, self._options.url)
            if self._on_lost is not None:
                self._on_lost()

    async def _on_reconnected(self) -> None:
        log.info("nats %s: reconnected to %s", self._role, self._options.url)
