"""The server API's methods, one coroutine each, shared by the HTTP and GRPC adapters.

Each method validates its request the way Centrifugo does (channel required, namespace known,
publication data in the namespace's format, history or presence enabled), calls the Node, and
returns a typed result or raises :class:`ApiError`. It knows nothing about HTTP. See
https://centrifugal.dev/docs/server/server_api.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any, Concatenate, Final, NoReturn, ParamSpec, TypeVar

from rotary.engines.base import EngineError, HistoryQuery, PublishOptions, UnrecoverablePositionError
from rotary.engines.base import StreamPosition as EnginePosition
from rotary.engines.outage import report_engine_error
from rotary.node.errors import ClientError
from rotary.node.node import Node
from rotary.protocol import codes, pb
from rotary.protocol.glob import InvalidPattern, compile_pattern
from rotary.server.api.schema import (
    BAD_REQUEST,
    INTERNAL,
    METHODS,
    NOT_AVAILABLE,
    NOT_FOUND,
    UNRECOVERABLE_POSITION,
    ApiError,
    BatchReply,
    BatchRequest,
    BatchResult,
    BroadcastRequest,
    BroadcastResult,
    ChannelInfo,
    ChannelsRequest,
    ChannelsResult,
    ClientInfo,
    Command,
    Disconnect,
    DisconnectRequest,
    EmptyResult,
    HistoryRemoveRequest,
    HistoryRequest,
    HistoryResult,
    InfoRequest,
    InfoResult,
    MapClearRequest,
    MapPublishRequest,
    MapReadStateRequest,
    MapReadStreamRequest,
    MapRemoveRequest,
    MapStatsRequest,
    NodeResult,
    Outcome,
    PresenceRequest,
    PresenceResult,
    PresenceStatsRequest,
    PresenceStatsResult,
    Publication,
    PublishRequest,
    PublishResult,
    RefreshRequest,
    RPCRequest,
    RPCResult,
    SharedPollPublishRequest,
    SubscribeOptionOverride,
    SubscribeRequest,
    UnsubscribeRequest,
)
from rotary.server.channels import ChannelRules, ResolvedChannel
from rotary.server.config.schema import Config
from rotary.server.grants import namespace_subscription
from rotary.server.tokens import Override
from rotary.server.tracing import api_outcome

log = logging.getLogger("rotary.server.api")

MAX_CONCURRENCY: Final = 1024
"""Most publications of one broadcast, or commands of one parallel batch, in flight at once."""

YIELD_EVERY: Final = 64
"""Commands a sequential batch runs between two returns to the event loop. Publishing into memory
never waits, so without them one batch of 85k commands held the loop for seconds: no pings, no
fan-out, no other request."""

STREAM_SUBSCRIPTION_TYPES: Final = frozenset({"", "stream"})
"""Namespaces ``publish`` may write to; map and shared-poll channels have their own methods (107)."""

CUSTOM_DISCONNECT_CODES: Final = range(3000, 5000)
"""Codes a custom API disconnect may carry: the ones SDKs understand and a WebSocket close can hold."""

MAX_DISCONNECT_REASON: Final = 123
"""Bytes of reason that fit a WebSocket close frame next to its code."""

Result = TypeVar("Result")
Params = ParamSpec("Params")


def guarded(
    method: Callable[Concatenate[ApiExecutor, Params], Awaitable[Result]],
) -> Callable[Concatenate[ApiExecutor, Params], Coroutine[Any, Any, Result]]:
    """Turns any failure other than ApiError (an engine down, a bug) into a logged 100."""

    @functools.wraps(method)
    async def run(self: ApiExecutor, /, *args: Params.args, **kwargs: Params.kwargs) -> Result:
        try:
            return await method(self, *args, **kwargs)
        except ApiError:
            raise
        except EngineError as exc:
            report_engine_error(f"server API {method.__name__}", exc)
            raise ApiError(INTERNAL) from None
        except Exception:
            log.exception("server API %s failed", method.__name__)
            raise ApiError(INTERNAL) from None

    return run


def _require_channel(channel: str) -> None:
    if not channel:
        raise ApiError(BAD_REQUEST)


def _payload(raw: bytes, b64: str) -> bytes:
    """Raw JSON, or binary sent as standard base64 (which wins when set); bad base64 is 107."""
    if not b64:
        return raw
    try:
        return base64.b64decode(b64, validate=True)
    except binascii.Error:
        raise ApiError(BAD_REQUEST) from None


def _client_info(info: pb.ClientInfo) -> ClientInfo:
    return ClientInfo(user=info.user, client=info.client, conn_info=info.conn_info, chan_info=info.chan_info)


def _publication(pub: pb.Publication) -> Publication:
    info = _client_info(pub.info) if pub.HasField("info") else None
    return Publication(data=pub.data, info=info, offset=pub.offset, tags=dict(pub.tags))


def _override(override: SubscribeOptionOverride | None) -> Override | None:
    if override is None:
        return None
    values = {f.name: getattr(override, f.name) for f in dataclasses.fields(Override)}
    return Override(**{name: None if v is None else v.value for name, v in values.items()})


def _custom_disconnect(disconnect: Disconnect) -> codes.Disconnect:
    if disconnect.code not in CUSTOM_DISCONNECT_CODES:
        raise ApiError(BAD_REQUEST, "disconnect code must be within 3000-4999")
    if len(disconnect.reason.encode()) > MAX_DISCONNECT_REASON:
        raise ApiError(BAD_REQUEST, f"disconnect reason longer than {MAX_DISCONNECT_REASON} bytes")
    return codes.Disconnect(disconnect.code, disconnect.reason)


async def _outcome(call: Awaitable[Any]) -> Outcome:
    try:
        return Outcome(result=await call)
    except ApiError as error:
        return Outcome(error=error)


async def _bounded(calls: Sequence[Callable[[], Awaitable[Result]]]) -> list[Result]:
    """Runs the calls concurrently, at most MAX_CONCURRENCY at a time; results in call order.

    MAX_CONCURRENCY workers take the calls in turn, and each returns to the event loop after every
    call, so the loop gets a turn (I/O included) at least once per MAX_CONCURRENCY calls.
    """
    results: dict[int, Result] = {}
    pending = iter(enumerate(calls))

    async def worker() -> None:
        for index, call in pending:
            results[index] = await call()
            await asyncio.sleep(0)

    await asyncio.gather(*(worker() for _ in range(min(MAX_CONCURRENCY, len(calls)))))
    return [results[index] for index in range(len(calls))]


async def in_turn(calls: Iterable[Callable[[], Awaitable[Result]]]) -> list[Result]:
    """Runs the calls one after another, returning to the event loop every YIELD_EVERY calls."""
    results: list[Result] = []
    for call in calls:
        if results and len(results) % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        results.append(await call())
    return results


class ApiExecutor:
    """Runs API methods against one Node under one config's channel rules."""

    def __init__(self, node: Node, config: Config, rules: ChannelRules) -> None:
        """``config`` is the server's; channel options come from ``rules``, built from the same config."""
        self._node = node
        self._rules = rules
        self._methods: dict[str, Callable[[Any], Awaitable[Any]]] = {
            name: getattr(self, name) for name in METHODS
        }

    async def execute(self, method: str, request: Any, protocol: str = "http") -> Any:
        """Runs the METHODS entry ``method`` with its request dataclass.

        With metrics on, its duration and error code count under ``protocol`` ("http", "grpc"),
        as Centrifugo's ``api_command_*`` families do; with tracing on, the current span learns
        the channel and the error.
        """
        metrics = self._node.metrics
        started = metrics.clock() if metrics is not None else 0.0
        try:
            result = await self._methods[method](request)
        except ApiError as error:
            if metrics is not None:
                metrics.api_error(protocol, method, error.code)
            api_outcome(request, (error.code, error.message))
            raise
        finally:
            if metrics is not None:
                metrics.api_command(protocol, method, metrics.clock() - started)
        api_outcome(request, None)
        return result

    # -- channel checks ----------------------------------------------------------------------------

    def _resolve(self, channel: str) -> ResolvedChannel:
        """Its namespace's options; 107 for an empty name, 102 for an unknown namespace."""
        _require_channel(channel)
        try:
            return self._rules.resolve(channel)
        except ClientError as exc:
            raise ApiError(exc.code) from None

    def _check_data(self, target: ResolvedChannel, data: bytes) -> None:
        try:
            self._rules.check_data(target, data)
        except ClientError as exc:
            raise ApiError(exc.code) from None

    def _with_history(self, channel: str) -> ResolvedChannel:
        target = self._resolve(channel)
        if not target.namespace.history_enabled:
            raise ApiError(NOT_AVAILABLE)
        return target

    def _with_presence(self, channel: str) -> ResolvedChannel:
        target = self._resolve(channel)
        if not target.options.presence:
            raise ApiError(NOT_AVAILABLE)
        return target

    # -- publications ------------------------------------------------------------------------------

    @guarded
    async def publish(self, request: PublishRequest) -> PublishResult:
        _require_channel(request.channel)
        return await self._publish(request.channel, _payload(request.data, request.b64data), request)

    @guarded
    async def broadcast(self, request: BroadcastRequest) -> BroadcastResult:
        if not request.channels:
            raise ApiError(BAD_REQUEST)
        data = _payload(request.data, request.b64data)

        def call(channel: str) -> Callable[[], Awaitable[Outcome]]:
            return lambda: _outcome(self._guarded_publish(channel, data, request))

        return BroadcastResult(responses=await _bounded([call(channel) for channel in request.channels]))

    @guarded
    async def _guarded_publish(self, channel: str, data: bytes, request: BroadcastRequest) -> PublishResult:
        return await self._publish(channel, data, request)

    async def _publish(
        self, channel: str, data: bytes, request: PublishRequest | BroadcastRequest
    ) -> PublishResult:
        target = self._resolve(channel)
        if target.options.subscription_type not in STREAM_SUBSCRIPTION_TYPES:
            raise ApiError(BAD_REQUEST)
        self._check_data(target, data)
        result = await self._node.publish(channel, data, self._publish_options(target, request))
        return PublishResult(offset=result.position.offset, epoch=result.position.epoch)

    @staticmethod
    def _publish_options(
        target: ResolvedChannel, request: PublishRequest | BroadcastRequest
    ) -> PublishOptions:
        """The namespace's history and delta settings, with what the request adds or turns off.

        A request that asks for nothing of its own (most do) gets the namespace's shared options as
        they are (``dataclasses.replace`` costs about a quarter of the executor's instructions per
        publish); the others get a copy with their settings."""
        defaults = target.publish_options()
        if not (
            request.tags
            or request.idempotency_key
            or request.delta
            or request.version
            or request.version_epoch
            or request.skip_history
        ):
            return defaults
        keep = not request.skip_history
        return dataclasses.replace(
            defaults,
            history_size=defaults.history_size if keep else 0,
            history_ttl=defaults.history_ttl if keep else 0.0,
            tags=dict(request.tags),
            idempotency_key=request.idempotency_key,
            use_delta=request.delta or defaults.use_delta,
            version=request.version,
            version_epoch=request.version_epoch,
        )

    # -- connections -------------------------------------------------------------------------------

    @guarded
    async def subscribe(self, request: SubscribeRequest) -> EmptyResult:
        target = self._resolve(request.channel)
        since = request.recover_since
        options = dataclasses.replace(
            namespace_subscription(target.namespace, _override(request.override)),
            chan_info=_payload(request.info, request.b64info),
            data=_payload(request.data, request.b64data),
            expire_at=request.expire_at,
            recover_since=None if since is None else EnginePosition(since.offset, since.epoch),
        )
        await self._node.subscribe(
            request.user, request.channel, options, client_id=request.client, session=request.session
        )
        return EmptyResult()

    @guarded
    async def unsubscribe(self, request: UnsubscribeRequest) -> EmptyResult:
        if request.channel:
            self._resolve(request.channel)
        await self._node.unsubscribe(
            request.user, request.channel, client_id=request.client, session=request.session
        )
        return EmptyResult()

    @guarded
    async def disconnect(self, request: DisconnectRequest) -> EmptyResult:
        custom = request.disconnect
        disconnect = codes.DISCONNECT_FORCE_NO_RECONNECT if custom is None else _custom_disconnect(custom)
        await self._node.disconnect(
            request.user,
            disconnect,
            client_id=request.client,
            session=request.session,
            whitelist=request.whitelist,
        )
        return EmptyResult()

    @guarded
    async def refresh(self, request: RefreshRequest) -> EmptyResult:
        await self._node.refresh(
            request.user,
            client_id=request.client,
            session=request.session,
            expired=request.expired,
            expire_at=request.expire_at,
            conn_info=request.info or None,
        )
        return EmptyResult()

    # -- channel state -----------------------------------------------------------------------------

    @guarded
    async def presence(self, request: PresenceRequest) -> PresenceResult:
        self._with_presence(request.channel)
        found = await self._node.read_presence(request.channel)
        return PresenceResult(presence={cid: _client_info(info) for cid, info in found.items()})

    @guarded
    async def presence_stats(self, request: PresenceStatsRequest) -> PresenceStatsResult:
        self._with_presence(request.channel)
        stats = await self._node.read_presence_stats(request.channel)
        return PresenceStatsResult(num_clients=stats.num_clients, num_users=stats.num_users)

    @guarded
    async def history(self, request: HistoryRequest) -> HistoryResult:
        target = self._with_history(request.channel)
        since = None if request.since is None else EnginePosition(request.since.offset, request.since.epoch)
        query = HistoryQuery(
            since=since,
            limit=request.limit,
            reverse=request.reverse,
            meta_ttl=target.namespace.history_meta_ttl,
        )
        try:
            found = await self._node.read_history(request.channel, query)
        except UnrecoverablePositionError:
            raise ApiError(UNRECOVERABLE_POSITION) from None
        return HistoryResult(
            publications=[_publication(pub) for pub in found.publications],
            epoch=found.position.epoch,
            offset=found.position.offset,
        )

    @guarded
    async def history_remove(self, request: HistoryRemoveRequest) -> EmptyResult:
        self._with_history(request.channel)
        await self._node.remove_history(request.channel)
        return EmptyResult()

    @guarded
    async def channels(self, request: ChannelsRequest) -> ChannelsResult:
        """Channels with subscribers on any node of the cluster, optionally filtered by a glob.

        A pattern Centrifugo's glob compiler refuses is its internal error, as there.
        """
        try:
            compile_pattern(request.pattern)
        except InvalidPattern:
            raise ApiError(INTERNAL) from None
        found = await self._node.cluster_channels(request.pattern)
        return ChannelsResult(channels={name: ChannelInfo(num_clients=n) for name, n in found.items()})

    @guarded
    async def info(self, request: InfoRequest) -> InfoResult:
        """Stats of every live node of the cluster."""
        return InfoResult(
            nodes=[
                NodeResult(
                    uid=node.uid,
                    name=node.name,
                    version=node.version,
                    num_clients=node.num_clients,
                    num_users=node.num_users,
                    num_channels=node.num_channels,
                    uptime=node.uptime,
                    num_subs=node.num_subs,
                )
                for node in await self._node.cluster_info()
            ]
        )

    @guarded
    async def rpc(self, request: RPCRequest) -> RPCResult:
        """Server-side RPC extensions; the open-source server registers none, so every method is 104."""
        if not request.method:
            raise ApiError(BAD_REQUEST)
        raise ApiError(NOT_FOUND)

    # -- map and shared poll channels ---------------------------------------------------------------

    @guarded
    async def map_publish(self, request: MapPublishRequest) -> EmptyResult:
        return self._not_a_map_channel(request.channel, request.key)

    @guarded
    async def map_remove(self, request: MapRemoveRequest) -> EmptyResult:
        return self._not_a_map_channel(request.channel, request.key)

    @guarded
    async def map_read_state(self, request: MapReadStateRequest) -> EmptyResult:
        return self._not_a_map_channel(request.channel)

    @guarded
    async def map_read_stream(self, request: MapReadStreamRequest) -> EmptyResult:
        return self._not_a_map_channel(request.channel)

    @guarded
    async def map_stats(self, request: MapStatsRequest) -> EmptyResult:
        return self._not_a_map_channel(request.channel)

    @guarded
    async def map_clear(self, request: MapClearRequest) -> EmptyResult:
        return self._not_a_map_channel(request.channel)

    @guarded
    async def shared_poll_publish(self, request: SharedPollPublishRequest) -> EmptyResult:
        """Centrifugo also wants a version here before it looks at the channel."""
        return self._not_a_map_channel(request.channel, request.key, request.version)

    def _not_a_map_channel(self, channel: str, *required: str | int) -> NoReturn:
        """Centrifugo's checks before a map or shared poll method acts: the channel and the other
        ``required`` fields set (else 107), its namespace known (else 102), and of the method's
        subscription type (else 107). rotary refuses map and shared poll namespaces at config
        validation (server/config/unbuilt.py), so every known channel is a stream one: 107."""
        if not all((channel, *required)):
            raise ApiError(BAD_REQUEST)
        self._resolve(channel)
        raise ApiError(BAD_REQUEST)

    # -- batch -------------------------------------------------------------------------------------

    @guarded
    async def batch(self, request: BatchRequest) -> BatchResult:
        """Commands in order, or all at once with ``parallel``; replies always in command order."""
        calls = [functools.partial(self._command, command) for command in request.commands]
        return BatchResult(replies=await (_bounded(calls) if request.parallel else in_turn(calls)))

    async def _command(self, command: Command | None) -> BatchReply:
        if command is None:
            return BatchReply("", Outcome(error=ApiError(BAD_REQUEST)))
        if not command.method:
            return BatchReply("", Outcome(error=ApiError(NOT_FOUND)))
        return BatchReply(command.method, await _outcome(self.execute(command.method, command.request)))
