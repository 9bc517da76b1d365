"""Connections to Redis: standalone, Sentinel, Cluster, and client-side sharding over several of them.

Several addresses mean several independent shards; a channel belongs to one of them by jump
consistent hashing of its name, the same choice on every node. Inside a shard, a Cluster routes
keys by their hash tag, and PUB/SUB goes over sharded PUB/SUB (SSUBSCRIBE/SPUBLISH, Redis 7+).
See https://centrifugal.dev/docs/server/engines#redis-engine and
https://centrifugal.dev/docs/server/engines#redis-sharding.

Every failure of a command (network, server error, timeout) surfaces as ``EngineError`` within the
I/O timeout: redis-py's own retries are off, so a down Redis answers fast instead of hanging.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import Connection, ConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelManagedConnection
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from rotary.engines.base import EngineError
from rotary.engines.redis.addresses import DEFAULT_PORT, Address, host_port, parse_address, seed_nodes
from rotary.engines.redis.exchange import ClusterExchange, ConnectionExchange, Exchange
from rotary.engines.redis.pipeline import AutoPipeline

__all__ = [
    "RedisOptions",
    "RedisShard",
    "RedisTls",
    "ShardSet",
    "connect_shards",
    "jump_hash",
    "shard_index",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RedisTls:
    """TLS towards Redis or its sentinels: the client context (the server builds it from a config
    TLS section; the default trusts the system roots) and the name the server's certificate is
    verified against ("" for the host dialled)."""

    context: ssl.SSLContext = field(default_factory=ssl.create_default_context)
    server_name: str = ""


class _TlsArguments:
    """Mixed into a redis-py connection class: dial with rotary's own context and server name,
    which redis-py's ``ssl_*`` options (file paths, no SNI override) cannot express."""

    tls: RedisTls

    def _connection_arguments(self) -> Mapping[str, Any]:
        arguments = dict(super()._connection_arguments())  # type: ignore[misc]
        arguments["ssl"] = self.tls.context
        if self.tls.server_name:
            arguments["server_hostname"] = self.tls.server_name
        return arguments


def _tls_connection(base: type[Connection], tls: RedisTls) -> type[Connection]:
    return type(f"Tls{base.__name__}", (_TlsArguments, base), {"tls": tls})


def _redis(tls: RedisTls | None, **kwargs: Any) -> Redis:
    """A client of one Redis server, over TLS when ``tls`` is given."""
    if tls is None:
        return Redis(**kwargs)
    pool = ConnectionPool(connection_class=_tls_connection(Connection, tls), **kwargs)
    return Redis.from_pool(pool)


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """How to reach Redis, in the terms of Centrifugo's ``engine.redis`` section."""

    addresses: tuple[str, ...] = ("redis://127.0.0.1:6379",)
    prefix: str = "centrifugo"
    db: int = 0
    user: str = ""
    password: str = ""
    client_name: str = ""
    connect_timeout: float = 1.0
    io_timeout: float = 4.0
    force_resp2: bool = False
    tls: RedisTls | None = None
    sentinel_tls: RedisTls | None = None
    cluster_addresses: tuple[str, ...] = ()
    sentinel_addresses: tuple[str, ...] = ()
    sentinel_master_name: str = ""
    sentinel_user: str = ""
    sentinel_password: str = ""

    @classmethod
    def from_config(
        cls, config: RedisConfigLike, tls: RedisTls | None = None, sentinel_tls: RedisTls | None = None
    ) -> RedisOptions:
        """Options from a config section shaped like Centrifugo's ``engine.redis``; the caller builds
        ``tls`` and ``sentinel_tls`` from its enabled TLS sections (engines read no PEM)."""
        if config.tls.enabled and tls is None:
            raise ValueError("redis tls is enabled: pass the TLS built from it")
        if config.sentinel_tls.enabled and sentinel_tls is None:
            raise ValueError("redis sentinel_tls is enabled: pass the TLS built from it")
        return cls(
            addresses=tuple(config.address),
            prefix=config.prefix,
            db=config.db,
            user=config.user,
            password=config.password,
            client_name=config.client_name,
            connect_timeout=config.connect_timeout,
            io_timeout=config.io_timeout,
            force_resp2=config.force_resp2,
            tls=tls,
            sentinel_tls=sentinel_tls,
            cluster_addresses=tuple(config.cluster_address),
            sentinel_addresses=tuple(config.sentinel_address),
            sentinel_master_name=config.sentinel_master_name,
            sentinel_user=config.sentinel_user,
            sentinel_password=config.sentinel_password,
        )


class TlsConfigLike(Protocol):
    @property
    def enabled(self) -> bool: ...


class RedisConfigLike(Protocol):
    """The fields of the server's Redis config section that the engine reads (engines never import it)."""

    @property
    def address(self) -> Sequence[str]: ...

    @property
    def prefix(self) -> str: ...

    @property
    def db(self) -> int: ...

    @property
    def user(self) -> str: ...

    @property
    def password(self) -> str: ...

    @property
    def client_name(self) -> str: ...

    @property
    def connect_timeout(self) -> float: ...

    @property
    def io_timeout(self) -> float: ...

    @property
    def force_resp2(self) -> bool: ...

    @property
    def tls(self) -> TlsConfigLike: ...

    @property
    def sentinel_tls(self) -> TlsConfigLike: ...

    @property
    def cluster_address(self) -> Sequence[str]: ...

    @property
    def sentinel_address(self) -> Sequence[str]: ...

    @property
    def sentinel_master_name(self) -> str: ...

    @property
    def sentinel_user(self) -> str: ...

    @property
    def sentinel_password(self) -> str: ...


def jump_hash(key: int, buckets: int) -> int:
    """Lamping and Veach's jump consistent hash: adding a shard moves only 1/n of the channels."""
    chosen, candidate = -1, 0
    while candidate < buckets:
        chosen = candidate
        key = (key * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        candidate = int((chosen + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return chosen


def shard_index(channel: str, shards: int) -> int:
    if shards == 1:
        return 0
    digest = hashlib.blake2b(channel.encode(), digest_size=8).digest()
    return jump_hash(int.from_bytes(digest, "little"), shards)


@dataclass(eq=False)
class RedisShard:
    """One Redis deployment: a command client plus what PUB/SUB connections need to find their server.

    Engine commands go through ``pipeline``, which shares round trips between concurrent callers;
    ``call`` is for the few commands of setting up. ``route`` names the server a PUB/SUB channel
    lives on (the shard itself, or a Cluster node by slot); ``locate`` turns that name into a host
    and port at (re)connect time, asking Sentinel for the current master.
    """

    name: str
    client: Redis | RedisCluster
    io_timeout: float
    connect_kwargs: dict[str, Any]
    sharded_pubsub: bool = False
    sentinel: Sentinel | None = None
    master_name: str = ""
    unix_path: str = ""
    db: int = 0
    _address: tuple[str, int] = ("", 0)
    _closing: list[Any] = field(default_factory=list)
    pipeline: AutoPipeline = field(init=False)

    def __post_init__(self) -> None:
        exchange: Exchange = (
            ClusterExchange(self.client)
            if isinstance(self.client, RedisCluster)
            else ConnectionExchange(self)
        )
        self.pipeline = AutoPipeline(exchange, self.name, self.io_timeout)

    @property
    def publish_command(self) -> str:
        return "spublish" if self.sharded_pubsub else "publish"

    @property
    def is_cluster(self) -> bool:
        return isinstance(self.client, RedisCluster)

    def route(self, pubsub_channel: str | bytes) -> str:
        if isinstance(self.client, RedisCluster):
            key = pubsub_channel.decode() if isinstance(pubsub_channel, bytes) else pubsub_channel
            node = self.client.get_node_from_key(key)
            if node is not None:
                return f"{node.host}:{node.port}"
        return self.name

    def slot(self, pubsub_channel: str | bytes) -> int:
        """Channels of one SSUBSCRIBE must share a slot; outside a Cluster everything is slot 0."""
        return self.client.keyslot(pubsub_channel) if isinstance(self.client, RedisCluster) else 0

    async def locate(self, route: str) -> tuple[str, int]:
        if self.sentinel is not None:
            host, port = await self.sentinel.discover_master(self.master_name)
            return str(host), int(port)
        if route != self.name:
            return host_port(route, DEFAULT_PORT)
        return self._address

    async def call(self, awaitable: Awaitable[T]) -> T:
        """Awaits one command, turning every failure into EngineError within the I/O timeout."""
        try:
            async with asyncio.timeout(self.io_timeout):
                return await awaitable
        except (RedisError, OSError, TimeoutError) as exc:
            raise EngineError(f"redis {self.name}: {exc or type(exc).__name__}") from exc

    async def close(self) -> None:
        await self.pipeline.close()
        await self.client.aclose()
        for sentinel_client in self._closing:
            await sentinel_client.aclose()


def _tls(options: RedisOptions, address: Address) -> RedisTls | None:
    return options.tls or (RedisTls() if address.tls else None)


def _client_kwargs(options: RedisOptions, address: Address) -> dict[str, Any]:
    return {
        "username": address.user or options.user or None,
        "password": address.password or options.password or None,
        "client_name": options.client_name or None,
        "socket_timeout": options.io_timeout,
        "socket_connect_timeout": options.connect_timeout,
        "protocol": 2 if options.force_resp2 else 3,
        "retry": Retry(NoBackoff(), 0),
    }


def _pubsub_kwargs(kwargs: dict[str, Any], tls: RedisTls | None) -> dict[str, Any]:
    """What a raw PUB/SUB connection needs: credentials, name, connect timeout and TLS."""
    wanted = ("username", "password", "client_name", "socket_connect_timeout")
    picked = {key: kwargs[key] for key in wanted}
    picked["tls"] = tls
    return picked


async def _supports_sharded_pubsub(client: Redis | RedisCluster) -> bool:
    info = await client.info("server")
    major = str(info.get("redis_version", "0")).split(".")[0]
    return int(major) >= 7


async def _standalone_or_cluster(options: RedisOptions, address: Address, name: str) -> RedisShard:
    kwargs = _client_kwargs(options, address)
    db = address.db if address.db is not None else options.db
    if address.unix_path:
        client = Redis(unix_socket_path=address.unix_path, db=db, **kwargs)
        return RedisShard(
            name, client, options.io_timeout, _pubsub_kwargs(kwargs, None), unix_path=address.unix_path, db=db
        )
    host, port = address.nodes[0]
    tls = _tls(options, address)
    client = _redis(tls, host=host, port=port, db=db, **kwargs)
    shard = RedisShard(
        name, client, options.io_timeout, _pubsub_kwargs(kwargs, tls), db=db, _address=(host, port)
    )
    try:
        info = await shard.call(client.info("cluster"))
    except BaseException:
        await client.aclose()
        raise
    if info.get("cluster_enabled") not in (1, "1"):
        return shard
    await client.aclose()
    return await _cluster(options, address, name)


async def _cluster(options: RedisOptions, address: Address, name: str) -> RedisShard:
    kwargs = _client_kwargs(options, address)
    tls = _tls(options, address)
    nodes = [ClusterNode(host, port) for host, port in address.nodes]
    client = RedisCluster(startup_nodes=nodes, **kwargs)
    if tls is not None:  # RedisCluster takes no connection class: set it on the nodes it will dial
        connection_class = _tls_connection(Connection, tls)
        client.nodes_manager.connection_kwargs["connection_class"] = connection_class
        for node in client.nodes_manager.startup_nodes.values():
            node.connection_class = connection_class
    shard = RedisShard(name, client, options.io_timeout, _pubsub_kwargs(kwargs, tls))
    try:
        await shard.call(client.initialize())
        shard.sharded_pubsub = await shard.call(_supports_sharded_pubsub(client))
    except BaseException:
        await client.aclose()
        raise
    return shard


async def _sentinel(options: RedisOptions, address: Address, name: str) -> RedisShard:
    kwargs = _client_kwargs(options, address)
    master_name = address.sentinel_master_name or options.sentinel_master_name
    sentinel_kwargs = {
        "username": options.sentinel_user or None,
        "password": options.sentinel_password or None,
        "socket_timeout": options.io_timeout,
        "socket_connect_timeout": options.connect_timeout,
        "retry": Retry(NoBackoff(), 0),  # a sentinel that is down: ask the next one at once
    }
    sentinel = Sentinel(list(address.nodes), sentinel_kwargs=sentinel_kwargs, **kwargs)  # type: ignore[no-untyped-call]
    sentinel_tls = options.sentinel_tls or (RedisTls() if address.sentinel_tls else None)
    if sentinel_tls is not None:
        sentinel.sentinels = [
            _redis(sentinel_tls, host=host, port=port, **sentinel_kwargs) for host, port in address.nodes
        ]
    db = address.db if address.db is not None else options.db
    tls = _tls(options, address)
    if tls is None:
        client = sentinel.master_for(master_name, db=db)
    else:
        master_class = _tls_connection(SentinelManagedConnection, tls)
        client = sentinel.master_for(master_name, db=db, connection_class=master_class)
    shard = RedisShard(
        name,
        client,
        options.io_timeout,
        _pubsub_kwargs(kwargs, tls),
        sentinel=sentinel,
        master_name=master_name,
        db=db,
    )
    shard._closing.extend(sentinel.sentinels)
    try:
        await shard.call(client.ping())
    except BaseException:
        await shard.close()
        raise
    return shard


async def connect_shards(options: RedisOptions) -> list[RedisShard]:
    """Connects every shard the options name; closes what it opened if any of them fails."""
    if options.cluster_addresses:  # one shard per entry, as Centrifugo shards across clusters
        plans = [(_cluster, Address(seed_nodes(entry))) for entry in options.cluster_addresses]
    elif options.sentinel_addresses:
        plans = [(_sentinel, Address(seed_nodes(entry))) for entry in options.sentinel_addresses]
    else:
        plans = [(_builder(parsed), parsed) for parsed in map(parse_address, options.addresses)]
    shards: list[RedisShard] = []
    try:
        for number, (build, address) in enumerate(plans):
            shards.append(await build(with_url_options(options, address), address, f"shard{number}"))
    except BaseException:
        for shard in shards:
            await shard.close()
        raise
    return shards


def with_url_options(options: RedisOptions, address: Address) -> RedisOptions:
    """The section's options with what the address URL sets for itself (``?io_timeout=2s``...)."""
    overrides = {
        name: value
        for name in ("connect_timeout", "io_timeout", "force_resp2", "sentinel_user", "sentinel_password")
        if (value := getattr(address, name)) is not None
    }
    return replace(options, **overrides) if overrides else options


def _builder(address: Address) -> Any:
    return _sentinel if address.sentinel_master_name else _standalone_or_cluster


class ShardSet:
    """The shards of one engine part, connected once however many callers ask at the same time."""

    def __init__(self, options: RedisOptions) -> None:
        self._options = options
        self._connecting: asyncio.Task[list[RedisShard]] | None = None
        self.shards: list[RedisShard] = []

    async def connect(self) -> list[RedisShard]:
        if self.shards:
            return self.shards
        connecting = self._connecting
        if connecting is None:
            connecting = self._connecting = asyncio.ensure_future(connect_shards(self._options))
        try:
            self.shards = await asyncio.shield(connecting)
        finally:
            # Every waiter of one attempt gets here; the first to find it done lets the next call
            # try again (after a failure), the others find it cleared already.
            if connecting.done() and self._connecting is connecting:
                self._connecting = None
        return self.shards

    def for_channel(self, channel: str) -> tuple[int, RedisShard]:
        if not self.shards:
            raise RuntimeError("the Redis engine part was not started")
        number = shard_index(channel, len(self.shards))
        return number, self.shards[number]

    async def close(self) -> None:
        shards, self.shards = self.shards, []
        for shard in shards:
            await shard.close()
