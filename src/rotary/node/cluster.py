"""User-targeted commands as they run on one node, and their control-message form for the others.

Each API operation that acts on a user's connections (disconnect, subscribe, unsubscribe, refresh)
has a *local* function, run by the node that received the call and by every node that receives its
control message, and a *command* builder for that message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import orjson

from rotary.engines.base import StreamPosition
from rotary.node.hooks import SubscribeOptions
from rotary.protocol import codes
from rotary.protocol._pb import control_pb2 as cpb

if TYPE_CHECKING:
    from rotary.node.node import Node, NodeInfo

Command = cpb.Command
SURVEY_CHANNELS = "channels"


def _target(user: str, client_id: str, session: str) -> cpb.Target:
    return cpb.Target(user=user, client=client_id, session=session)


# -- disconnect --------------------------------------------------------------------------------------


def disconnect_local(
    node: Node,
    user: str,
    client_id: str,
    session: str,
    disconnect: codes.Disconnect,
    whitelist: tuple[str, ...],
) -> None:
    for client in node.targets(user, client_id, session):
        if client.id not in whitelist:
            client.close(disconnect)


def disconnect_command(
    user: str, client_id: str, session: str, disconnect: codes.Disconnect, whitelist: tuple[str, ...]
) -> Command:
    return Command(
        disconnect=cpb.DisconnectUser(
            target=_target(user, client_id, session),
            code=disconnect.code,
            reason=disconnect.reason,
            whitelist=whitelist,
        )
    )


# -- subscribe / unsubscribe -------------------------------------------------------------------------


async def subscribe_local(
    node: Node, user: str, client_id: str, session: str, channel: str, options: SubscribeOptions
) -> None:
    from rotary.node.subscription import subscribe_server_side

    for client in node.targets(user, client_id, session):
        if not client.closed and not client.is_subscribed(channel):
            await subscribe_server_side(client, channel, options)


_CARRIED = tuple(
    f.name
    for f in dataclasses.fields(SubscribeOptions)
    if f.name in cpb.SubscribeOptions.DESCRIPTOR.fields_by_name and f.name != "recover_since"
)
"""SubscribeOptions fields that travel to other nodes under the same name."""


def subscribe_command(user: str, client_id: str, session: str, channel: str, o: SubscribeOptions) -> Command:
    options = cpb.SubscribeOptions(**{name: getattr(o, name) for name in _CARRIED})
    if o.recover_since is not None:
        options.recover_since.offset = o.recover_since.offset
        options.recover_since.epoch = o.recover_since.epoch
    target = _target(user, client_id, session)
    return Command(subscribe=cpb.SubscribeUser(target=target, channel=channel, options=options))


def _options(o: cpb.SubscribeOptions) -> SubscribeOptions:
    since = o.recover_since
    return SubscribeOptions(
        **{name: getattr(o, name) for name in _CARRIED},
        recover_since=StreamPosition(since.offset, since.epoch) if o.HasField("recover_since") else None,
    )


def unsubscribe_local(node: Node, user: str, client_id: str, session: str, channel: str) -> None:
    from rotary.node.subscription import end

    for client in node.targets(user, client_id, session):
        end(client, channel, codes.UNSUBSCRIBE_SERVER)


def unsubscribe_command(user: str, client_id: str, session: str, channel: str) -> Command:
    return Command(unsubscribe=cpb.UnsubscribeUser(target=_target(user, client_id, session), channel=channel))


# -- refresh -----------------------------------------------------------------------------------------


def refresh_local(
    node: Node,
    user: str,
    client_id: str,
    session: str,
    expired: bool,
    expire_at: int,
    conn_info: bytes | None,
) -> None:
    loop_now = asyncio.get_running_loop().time()
    for client in node.targets(user, client_id, session):
        if expired:
            client.close(codes.DISCONNECT_EXPIRED)
            continue
        if conn_info is not None:
            client.conn_info = conn_info
        client.session.set_expiry(expire_at, loop_now, time.time())
        client.flush()


def refresh_command(
    user: str, client_id: str, session: str, expired: bool, expire_at: int, conn_info: bytes | None
) -> Command:
    return Command(
        refresh=cpb.RefreshUser(
            target=_target(user, client_id, session),
            expired=expired,
            expire_at=expire_at,
            conn_info=conn_info or b"",
            has_conn_info=conn_info is not None,
        )
    )


def emulation_command(session: str, data: bytes) -> Command:
    return Command(emulation=cpb.Emulation(session=session, data=data))


# -- receiving ---------------------------------------------------------------------------------------


async def apply(node: Node, command: Command) -> None:
    """Runs a user-targeted command that another node broadcast."""
    if command.HasField("disconnect"):
        d = command.disconnect
        t = d.target
        disconnect_local(
            node, t.user, t.client, t.session, codes.Disconnect(d.code, d.reason), tuple(d.whitelist)
        )
    elif command.HasField("subscribe"):
        s = command.subscribe
        t = s.target
        await subscribe_local(node, t.user, t.client, t.session, s.channel, _options(s.options))
    elif command.HasField("unsubscribe"):
        u = command.unsubscribe
        unsubscribe_local(node, u.target.user, u.target.client, u.target.session, u.channel)
    elif command.HasField("emulation"):
        node.deliver_emulation(command.emulation.session, command.emulation.data)
    elif command.HasField("refresh"):
        r = command.refresh
        t = r.target
        refresh_local(
            node,
            t.user,
            t.client,
            t.session,
            r.expired,
            r.expire_at,
            r.conn_info if r.has_conn_info else None,
        )


# -- node stats and surveys --------------------------------------------------------------------------


def info_message(info: NodeInfo) -> cpb.NodeInfo:
    return cpb.NodeInfo(
        uid=info.uid,
        name=info.name,
        version=info.version,
        num_clients=info.num_clients,
        num_users=info.num_users,
        num_channels=info.num_channels,
        uptime=info.uptime,
        num_subs=info.num_subs,
    )


def node_info(message: cpb.NodeInfo) -> NodeInfo:
    from rotary.node.node import NodeInfo

    return NodeInfo(
        uid=message.uid,
        name=message.name,
        version=message.version,
        num_clients=message.num_clients,
        num_users=message.num_users,
        num_channels=message.num_channels,
        num_subs=message.num_subs,
        uptime=message.uptime,
    )


def decode_channels(data: bytes) -> dict[str, int]:
    found = orjson.loads(data)
    return {str(k): int(v) for k, v in found.items()} if isinstance(found, dict) else {}


def surveys(node: Node) -> dict[str, Callable[[bytes], Awaitable[bytes]]]:
    async def channels(data: bytes) -> bytes:
        return orjson.dumps(node.channels(data.decode()))

    return {SURVEY_CHANNELS: channels}
