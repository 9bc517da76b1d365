"""Making a subscription live: hub registration, engine subscription, presence, recovery, join.

One sequence serves the three ways a subscription starts: a client's `subscribe` command, a
server-side subscription made at connect, and one made later through the API. While it runs the
channel is *subscribing*, so publications that arrive meanwhile are buffered, then merged after the
history that was read (https://centrifugal.dev/docs/server/history_and_recovery).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rotary.engines.base import HistoryQuery, StreamPosition, UnrecoverablePositionError
from rotary.node.errors import ClientError, DisconnectError
from rotary.node.hooks import SubscribeOptions
from rotary.protocol import codes, pb, prepared
from rotary.protocol.codec import ProtocolType
from rotary.protocol.tags_filter import InvalidTagsFilter, TagsMatcher, compile_filter
from rotary.session.channels import ChannelState, SubscriptionStatus
from rotary.session.recovery import is_recovered, merge_buffered

if TYPE_CHECKING:
    from rotary.node.client import Client


@dataclass(slots=True)
class Started:
    """A subscription registered and positioned, waiting for its reply to be written."""

    state: ChannelState
    result: pb.SubscribeResult
    pending: list[pb.Publication]
    """Publications to push right after the reply."""
    seen_offset: int = 0
    """The newest offset recovered or buffered, including publications the tags filter dropped."""


async def start_subscription(
    client: Client, channel: str, opts: SubscribeOptions, request: pb.SubscribeRequest, server_side: bool
) -> Started:
    """Registers the subscription and computes its reply; undone again if anything fails."""
    node = client.node
    state = ChannelState(
        channel=channel,
        server_side=server_side,
        positioned=opts.positioned or opts.recoverable,
        push_join_leave=opts.push_join_leave,
        emit_presence=opts.emit_presence,
        emit_join_leave=opts.emit_join_leave,
        expire_at=opts.expire_at,
        chan_info=opts.chan_info,
        delta=opts.delta,
        tags_filter=_tags_filter(request, opts),
    )
    client.channels[channel] = state
    node.hub.add_subscriber(channel, client, state)
    try:
        await node.sync_broker_subscription(channel)
        if opts.emit_presence:
            await node.presence_manager.add_presence(channel, client.id, client.client_info(opts.chan_info))
        result, recovered = await _position(client, channel, opts, request, state.tags_filter)
    except BaseException:
        if client.channels.get(channel) is state:
            node.drop_subscription(client, channel, None)
        raise
    if opts.expire_at > 0:
        result.expires = True
        result.ttl = max(opts.expire_at - int(time.time()), 0)
    if opts.data:
        result.data = opts.data
    if opts.delta:
        result.delta = True
    if state.positioned:
        pending, ok = merge_buffered(recovered, state.buffered, result.offset)
    else:
        pending, ok = [pub for pub, _ in state.buffered], True
    state.buffered = []
    if not ok:
        node.drop_subscription(client, channel, None)
        raise DisconnectError(codes.DISCONNECT_INSUFFICIENT_STATE)
    seen = max((pub.offset for pub in pending), default=0)
    if recovered:
        shown = [pub for pub in recovered if state.wants(pub)]
        result.publications.extend(_recovered_for(state, shown, client.transport.protocol))
        pending = pending[len(recovered) :]
    return Started(state, result, [pub for pub in pending if state.wants(pub)], seen)


def _tags_filter(request: pb.SubscribeRequest, opts: SubscribeOptions) -> TagsMatcher | None:
    """The subscriber's compiled tags filter. A delta subscription gets none: its chain of deltas
    needs every publication (Centrifugo's SDKs refuse to combine the two)."""
    if not request.HasField("tf") or opts.delta:
        return None
    if not opts.allow_tags_filter:
        raise ClientError(codes.ERROR_BAD_REQUEST)
    try:
        return compile_filter(request.tf)
    except InvalidTagsFilter:
        raise ClientError(codes.ERROR_BAD_REQUEST) from None


def _recovered_for(
    state: ChannelState, pubs: list[pb.Publication], protocol: ProtocolType
) -> list[pb.Publication]:
    return prepared.delta_chain(pubs, protocol) if state.delta else pubs


async def _position(
    client: Client,
    channel: str,
    opts: SubscribeOptions,
    request: pb.SubscribeRequest,
    tags_filter: TagsMatcher | None,
) -> tuple[pb.SubscribeResult, list[pb.Publication]]:
    """Reads the stream position (and the missed publications when recovering)."""
    result = pb.SubscribeResult()
    if not (opts.positioned or opts.recoverable):
        return result, []
    result.positioned = True
    result.recoverable = opts.recoverable
    since = opts.recover_since
    auto_cache = opts.auto_cache_recover and opts.cache_recovery
    recovering = opts.recoverable and (request.recover or since is not None or auto_cache)
    if since is None:
        since = StreamPosition(request.offset, request.epoch)
    history = client.node.history
    meta_ttl = opts.history_meta_ttl
    recovered: list[pb.Publication] = []
    if not recovering:
        top, ok = (await history(channel, HistoryQuery(meta_ttl=meta_ttl))).position, False
    elif opts.cache_recovery:
        top, recovered, ok = await _recover_cache(client, channel, since, meta_ttl, tags_filter)
    else:
        top, recovered, ok = await _recover_stream(client, channel, since, meta_ttl)
    if recovering and not ok and opts.reject_unrecovered:
        raise ClientError(codes.ERROR_UNRECOVERABLE_POSITION)
    result.epoch, result.offset = top.epoch, top.offset
    result.was_recovering = recovering
    result.recovered = recovering and ok
    if result.recovered:
        result.offset = since.offset
    return result, recovered


async def _recover_cache(
    client: Client, channel: str, since: StreamPosition, meta_ttl: float, tags_filter: TagsMatcher | None
) -> tuple[StreamPosition, list[pb.Publication], bool]:
    """Cache mode: only the latest publication matters (the latest one the subscriber's tags filter
    accepts), and only if the client lacks it."""
    limit = 1 if tags_filter is None else client.node.config.recovery_max_publication_limit or -1
    found = await client.node.history(channel, HistoryQuery(limit=limit, reverse=True, meta_ttl=meta_ttl))
    top = found.position
    same_state = since.offset > 0 and since.offset == top.offset and since.epoch == top.epoch
    if not found.publications:
        return top, [], same_state
    if found.publications[0].offset != top.offset:
        return top, [], False
    if same_state:
        return top, [], True
    matching = [p for p in found.publications if tags_filter is None or tags_filter(p.tags)]
    return top, matching[:1], True


async def _recover_stream(
    client: Client, channel: str, since: StreamPosition, meta_ttl: float
) -> tuple[StreamPosition, list[pb.Publication], bool]:
    """Stream mode: every publication after the client's position, all or nothing."""
    node = client.node
    limit = node.config.recovery_max_publication_limit
    try:
        found = await node.history(
            channel, HistoryQuery(since=since, limit=limit + 1 if limit > 0 else -1, meta_ttl=meta_ttl)
        )
    except UnrecoverablePositionError:
        return (await node.history(channel, HistoryQuery(meta_ttl=meta_ttl))).position, [], False
    top, recovered = found.position, list(found.publications)
    ok = is_recovered(
        recovered, since.offset, since.epoch, top.offset, top.epoch, limit if limit > 0 else len(recovered)
    )
    return top, (recovered if ok else []), ok


def activate(client: Client, started: Started) -> None:
    """Marks the subscription live right after its reply was queued, then pushes what arrived meanwhile.

    Runs synchronously with the write of the reply, so no publication can slip in between.
    """
    state, result = started.state, started.result
    client.flush()
    state.status = SubscriptionStatus.SUBSCRIBED
    if state.expire_at:
        client.session.set_subscription_expiry(
            state.channel, state.expire_at, client.loop_time(), time.time()
        )
    state.epoch = result.epoch
    last = result.publications[-1].offset if result.publications else result.offset
    state.offset = max(last, result.offset)
    protocol, uni = client.transport.protocol, client.transport.unidirectional
    for pub in started.pending:
        if pub.offset:
            state.offset = pub.offset
        client.session.send_encoded(_pending_push(state, pub, protocol, uni))
    state.offset = max(state.offset, started.seen_offset)
    state.delta_ready = bool(result.publications or started.pending)
    client.flush()
    if state.emit_join_leave:
        client.node.spawn(client.node.broker.publish_join(state.channel, client.client_info(state.chan_info)))


def _pending_push(state: ChannelState, pub: pb.Publication, protocol: ProtocolType, uni: bool) -> bytes:
    """A publication that arrived while subscribing; whole, so a delta subscriber gets a base."""
    if state.delta:
        return prepared.delta_publication_push(state.channel, pub, None, protocol, uni)
    return prepared.publication_push(state.channel, pub, protocol, uni)


async def subscribe_server_side(client: Client, channel: str, opts: SubscribeOptions) -> None:
    """A subscription the server makes for a connected client: announced with a `subscribe` push."""
    started = await start_subscription(client, channel, opts, pb.SubscribeRequest(channel=channel), True)
    if client.closed:
        return
    r = started.result
    push = pb.Subscribe(
        recoverable=r.recoverable, epoch=r.epoch, offset=r.offset, positioned=r.positioned, data=r.data
    )
    client.session.send_reply(pb.Reply(push=pb.Push(channel=channel, subscribe=push)))
    activate(client, started)
