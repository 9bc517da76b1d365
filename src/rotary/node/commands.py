"""One handler per client command, in a table keyed by the command's request field.

Each handler reads its request from the Command, asks the hooks for a decision, calls the node, and
queues the reply on the session; errors travel as ClientError / DisconnectError (see client.py).
See https://centrifugal.dev/docs/transports/client_protocol for every command's semantics.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from rotary.engines.base import HistoryQuery, StreamPosition, UnrecoverablePositionError
from rotary.node.errors import ClientError, DisconnectError
from rotary.node.hooks import ConnectionInfo
from rotary.node.subscription import Started, activate, end, start_subscription
from rotary.protocol import codes, pb

if TYPE_CHECKING:
    from rotary.node.client import Client

Handler = Callable[["Client", pb.Command], Awaitable[None]]


def _required(channel: str) -> str:
    """A command naming no channel ends the connection with 3501, as in centrifuge."""
    if not channel:
        raise DisconnectError(codes.DISCONNECT_BAD_REQUEST)
    return channel


def _metric_labels(transport: str, name: str, version: str) -> tuple[str, str, str, str]:
    """Centrifugo OSS registers no client names or versions, so a reported one is "unregistered"
    and a missing one "unnamed" / "unversioned": the label set stays bounded whatever clients send."""
    return (
        transport,
        "",
        "unregistered" if name else "unnamed",
        "unregistered" if version else "unversioned",
    )


def _ttl(expire_at: int) -> int:
    return max(expire_at - int(time.time()), 0)


async def connect(client: Client, cmd: pb.Command) -> None:
    req = cmd.connect
    node = client.node
    conn = ConnectionInfo(
        client.id,
        client.transport_name,
        client.protocol,
        client.headers,
        client.remote,
        client.grpc_metadata,
        client.request,
    )
    decision = await node.hooks.on_connecting(conn, req)
    if client.closed:
        return
    limit = node.config.user_connection_limit
    if limit and decision.user and len(node.hub.users.get(decision.user, {})) >= limit:
        raise DisconnectError(codes.DISCONNECT_CONNECTION_LIMIT)
    if decision.expire_at and decision.expire_at <= time.time():
        raise ClientError(codes.ERROR_EXPIRED)
    if len(decision.subscriptions) > node.config.channel_limit:
        raise DisconnectError(codes.DISCONNECT_CHANNEL_LIMIT)
    client.user, client.conn_info, client.meta = decision.user, decision.conn_info, decision.meta
    if req.headers:  # most SDKs send none, and dict() of an empty protobuf map is not free
        client.emulated_headers = dict(req.headers)
    refresh_by_server = decision.server_side_refresh
    client.session.connected(client.loop_time(), decision.expire_at, time.time(), refresh_by_server)
    client.metric_labels = _metric_labels(client.transport_name, req.name, req.version)
    node.hub.add_client(client)
    result = pb.ConnectResult()  # fields set one by one: about half the cost of keywords
    result.client = client.id
    result.version = node.config.version
    if decision.data:
        result.data = decision.data
    started: list[Started] = []
    for channel, opts in decision.subscriptions.items():
        if client.closed:
            return
        sub_req = req.subs[channel] if channel in req.subs else pb.SubscribeRequest()
        sub_req.channel = channel
        s = await start_subscription(client, channel, opts, sub_req, server_side=True)
        result.subs[channel].CopyFrom(s.result)
        started.append(s)
    if client.closed:
        return
    if decision.expire_at and not refresh_by_server:
        result.expires, result.ttl = True, _ttl(decision.expire_at)
    limits = client.session.limits
    if limits.ping_interval > 0:
        result.ping = int(limits.ping_interval)
        result.pong = not limits.unidirectional and limits.pong_timeout > 0
    if client.session_id:
        result.session = client.session_id
        if not limits.unidirectional:  # emulated bidirectional transports route by node
            result.node = node.id
    if node.config.connect_include_server_time:
        result.time = int(time.time() * 1000)
    if limits.unidirectional:
        client.session.send_push(pb.Push(connect=_connect_push(result)))
    else:
        client.session.send_result(cmd.id, "connect", result)
    client.flush()
    for s in started:
        activate(client, s)
    await node.client_connected(client)
    if decision.single_connection:
        await node.disconnect(client.user, codes.DISCONNECT_CONNECTION_LIMIT, whitelist=(client.id,))


def _connect_push(result: pb.ConnectResult) -> pb.Connect:
    """A unidirectional client gets its connect result as a `connect` push: the same fields by name,
    under other field numbers."""
    push = pb.Connect(
        client=result.client,
        version=result.version,
        data=result.data,
        expires=result.expires,
        ttl=result.ttl,
        ping=result.ping,
        pong=result.pong,
        session=result.session,
        node=result.node,
        time=result.time,
    )
    for channel, sub in result.subs.items():
        push.subs[channel].CopyFrom(sub)
    return push


async def subscribe(client: Client, cmd: pb.Command) -> None:
    req = cmd.subscribe
    channel = _required(req.channel)
    if client.is_subscribed(channel):
        raise ClientError(codes.ERROR_ALREADY_SUBSCRIBED)
    if len(client.channels) >= client.node.config.channel_limit:
        raise ClientError(codes.ERROR_LIMIT_EXCEEDED)
    opts = await client.node.hooks.on_subscribe(client, req)
    try:
        if client.closed or client.is_subscribed(channel):
            return
        if opts.expire_at and opts.expire_at <= time.time():
            raise ClientError(codes.ERROR_EXPIRED)
        started = await start_subscription(client, channel, opts, req, server_side=False)
    finally:  # a feed lives as long as its subscription; one that never started ends here
        if opts.feed is not None and client.feeds.get(channel) is not opts.feed:
            opts.feed.close()
    if client.closed:
        return
    client.session.send_result(cmd.id, "subscribe", started.result)
    activate(client, started)


async def unsubscribe(client: Client, cmd: pb.Command) -> None:
    end(client, _required(cmd.unsubscribe.channel), None)
    client.session.send_result(cmd.id, "unsubscribe", pb.UnsubscribeResult())


async def publish(client: Client, cmd: pb.Command) -> None:
    req = cmd.publish
    _required(req.channel)
    decision = await client.node.hooks.on_publish(client, req)
    if not decision.forwarded:
        await client.node.publish(req.channel, decision.data, decision.options)
    client.session.send_result(cmd.id, "publish", pb.PublishResult())


async def presence(client: Client, cmd: pb.Command) -> None:
    channel = _required(cmd.presence.channel)
    await client.node.hooks.on_presence(client, channel)
    entries = await client.node.read_presence(channel)
    result = pb.PresenceResult()
    for client_id, info in entries.items():
        result.presence[client_id].CopyFrom(info)
    client.session.send_result(cmd.id, "presence", result)


async def presence_stats(client: Client, cmd: pb.Command) -> None:
    channel = _required(cmd.presence_stats.channel)
    await client.node.hooks.on_presence(client, channel)
    stats = await client.node.read_presence_stats(channel)
    result = pb.PresenceStatsResult(num_clients=stats.num_clients, num_users=stats.num_users)
    client.session.send_result(cmd.id, "presence_stats", result)


async def history(client: Client, cmd: pb.Command) -> None:
    req = cmd.history
    _required(req.channel)
    meta_ttl = await client.node.hooks.on_history(client, req)
    max_limit = client.node.config.history_max_publication_limit
    limit = req.limit
    if max_limit > 0 and (limit < 0 or limit > max_limit):
        limit = max_limit
    since = StreamPosition(req.since.offset, req.since.epoch) if req.HasField("since") else None
    try:
        found = await client.node.read_history(req.channel, HistoryQuery(since, limit, req.reverse, meta_ttl))
    except UnrecoverablePositionError:
        raise ClientError(codes.ERROR_UNRECOVERABLE_POSITION) from None
    result = pb.HistoryResult(epoch=found.position.epoch, offset=found.position.offset)
    result.publications.extend(found.publications)
    client.session.send_result(cmd.id, "history", result)


async def rpc(client: Client, cmd: pb.Command) -> None:
    data = await client.node.hooks.on_rpc(client, cmd.rpc)
    client.session.send_result(cmd.id, "rpc", pb.RPCResult(data=data))


async def send(client: Client, cmd: pb.Command) -> None:
    """Centrifugo has no asynchronous message handler: the client learns it by a 3508 close."""
    raise DisconnectError(codes.DISCONNECT_NOT_AVAILABLE)


async def refresh(client: Client, cmd: pb.Command) -> None:
    if client.session.server_side_refresh:  # the server refreshes this connection itself
        raise DisconnectError(codes.DISCONNECT_BAD_REQUEST)
    decision = await client.node.hooks.on_refresh(client, cmd.refresh)
    if decision.expired:
        raise DisconnectError(codes.DISCONNECT_EXPIRED)
    if decision.expire_at and decision.expire_at <= time.time():
        raise DisconnectError(codes.DISCONNECT_EXPIRED)
    if decision.conn_info is not None:
        client.conn_info = decision.conn_info
    if decision.meta is not None:
        client.meta = decision.meta
    client.session.set_expiry(decision.expire_at, client.loop_time(), time.time())
    result = pb.RefreshResult()  # centrifuge answers a refresh with its expiry only
    if decision.expire_at:
        result.expires, result.ttl = True, _ttl(decision.expire_at)
    client.session.send_result(cmd.id, "refresh", result)


async def sub_refresh(client: Client, cmd: pb.Command) -> None:
    req = cmd.sub_refresh
    state = client.channels.get(_required(req.channel))
    if state is None:
        raise ClientError(codes.ERROR_PERMISSION_DENIED)
    if state.server_side_refresh:  # the server refreshes this subscription itself
        raise DisconnectError(codes.DISCONNECT_BAD_REQUEST)
    decision = await client.node.hooks.on_sub_refresh(client, req)
    if decision.expired or (decision.expire_at and decision.expire_at <= time.time()):
        raise ClientError(codes.ERROR_EXPIRED)
    state.refresh(decision.expire_at, decision.chan_info)
    client.session.set_subscription_expiry(req.channel, decision.expire_at, client.loop_time(), time.time())
    result = pb.SubRefreshResult()
    if decision.expire_at:
        result.expires, result.ttl = True, _ttl(decision.expire_at)
    client.session.send_result(cmd.id, "sub_refresh", result)


COMMANDS: dict[str, Handler] = {
    "connect": connect,
    "subscribe": subscribe,
    "unsubscribe": unsubscribe,
    "publish": publish,
    "presence": presence,
    "presence_stats": presence_stats,
    "history": history,
    "rpc": rpc,
    "send": send,
    "refresh": refresh,
    "sub_refresh": sub_refresh,
}
