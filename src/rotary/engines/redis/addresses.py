"""Redis address forms, as Centrifugo accepts them in ``engine.redis.address``.

See https://centrifugal.dev/docs/server/engines#redis-engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from rotary.protocol.go_duration import parse_duration

__all__ = ["DEFAULT_PORT", "DEFAULT_SENTINEL_PORT", "Address", "host_port", "parse_address", "seed_nodes"]

DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379


@dataclass(frozen=True, slots=True)
class Address:
    """One parsed address: where to connect, and what the URL says beyond host and port."""

    nodes: tuple[tuple[str, int], ...]
    unix_path: str = ""
    db: int | None = None
    user: str = ""
    password: str = ""
    tls: bool = False
    sentinel_master_name: str = ""
    sentinel_tls: bool = False
    connect_timeout: float | None = None
    io_timeout: float | None = None
    force_resp2: bool | None = None
    sentinel_user: str | None = None
    sentinel_password: str | None = None
    """The URL's own ``connect_timeout``, ``io_timeout``, ``force_resp2``, ``sentinel_user`` and
    ``sentinel_password``; None where the URL does not set them (the section's values apply)."""


def parse_address(address: str) -> Address:
    """``host:port``, ``redis://user:pass@host:port/db``, ``rediss://``, ``unix://path``,
    ``redis+sentinel://host:26379?sentinel_master_name=m`` (``rediss+sentinel://`` with TLS to the
    sentinels too); ``?addr=host:port`` adds seeds, ``?tls_enabled=true`` and
    ``?sentinel_tls_enabled=true`` turn TLS on as the ``rediss`` schemes do; ``connect_timeout``,
    ``io_timeout`` (Go durations), ``force_resp2``, ``sentinel_user`` and ``sentinel_password``
    override the section's keys for this address. ``replica_client_enabled=true`` is refused:
    rotary does not read from replicas (``replica_client.enabled`` is refused likewise).
    Raises ValueError naming the option."""
    if "://" not in address:
        return Address((host_port(address, DEFAULT_PORT),))
    url = urlsplit(address)
    query = parse_qs(url.query, keep_blank_values=True)  # as Go: ?sentinel_password= sets it empty
    if url.scheme == "unix":
        return Address((), unix_path=url.path, db=_int_or_none(query.get("db", [""])[0]))
    master_name = query.get("sentinel_master_name", [""])[0]
    sentinel = url.scheme in ("redis+sentinel", "rediss+sentinel")
    secure = url.scheme.startswith("rediss")
    default_port = DEFAULT_SENTINEL_PORT if sentinel else DEFAULT_PORT
    nodes = [host_port(url.netloc.rpartition("@")[2], default_port)] if url.hostname else []
    nodes += [host_port(seed, default_port) for seed in query.get("addr", [])]
    if _flag(query, "replica_client_enabled"):
        raise ValueError("replica_client_enabled=true: reading from Redis replicas is not built in rotary")
    return Address(
        tuple(nodes),
        db=_int_or_none(url.path.strip("/")),
        user=unquote(url.username or ""),
        password=unquote(url.password or ""),
        tls=secure or _flag(query, "tls_enabled"),
        sentinel_master_name=master_name,
        sentinel_tls=(secure and (sentinel or bool(master_name))) or _flag(query, "sentinel_tls_enabled"),
        connect_timeout=_duration(query, "connect_timeout"),
        io_timeout=_duration(query, "io_timeout"),
        force_resp2=_flag(query, "force_resp2") if "force_resp2" in query else None,
        sentinel_user=_text(query, "sentinel_user"),
        sentinel_password=_text(query, "sentinel_password"),
    )


def seed_nodes(entry: str) -> tuple[tuple[str, int], ...]:
    """The nodes of one ``cluster_address`` or ``sentinel_address`` entry: one shard, its seeds
    separated by commas, each ``host:port`` as Go's ``net.SplitHostPort`` reads it. Centrifugo takes
    no URL there (``db``, TLS, credentials and timeouts come from the section's keys) and refuses one
    as malformed; so does rotary, rather than drop its options. Raises ValueError."""
    nodes = []
    for seed in entry.split(","):
        host, sep, port = seed.rpartition(":")
        bracketed = host.startswith("[") and host.endswith("]")
        if not sep or not port.isdigit() or (":" in host and not bracketed):
            raise ValueError(
                f"malformed address {seed!r}: host:port expected, comma-separated; a URL and its "
                "options are read only in redis.address (the section's keys apply here)"
            )
        nodes.append((host.strip("[]"), int(port)))
    return tuple(nodes)


def host_port(text: str, default_port: int) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    if not port.isdigit():
        raise ValueError(f"not a port number: {port!r}")
    return host.strip("[]"), int(port)


GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True}
GO_BOOLS |= {"0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}
"""The spellings Go's strconv.ParseBool accepts, as Centrifugo reads URL flags with it."""


def _flag(query: dict[str, list[str]], name: str) -> bool:
    if name not in query:
        return False
    value = query[name][0]
    if value not in GO_BOOLS:
        raise ValueError(f"invalid {name} value: {value!r}")
    return GO_BOOLS[value]


def _duration(query: dict[str, list[str]], name: str) -> float | None:
    if name not in query:
        return None
    try:
        return parse_duration(query[name][0])
    except ValueError:
        raise ValueError(f"invalid {name.replace('_', ' ')}: {query[name][0]!r}") from None


def _text(query: dict[str, list[str]], name: str) -> str | None:
    return query[name][0] if name in query else None


def _int_or_none(text: str) -> int | None:
    return int(text) if text else None
