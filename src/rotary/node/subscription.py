"""The one owner of a subscription's life on this node: it starts, goes live and ends only here.

One sequence starts it, for the three ways a subscription begins: a client's `subscribe` command, a
server-side subscription made at connect, and one made later through the API. While it runs the
channel is *subscribing*, so publications that arrive meanwhile are buffered, then merged after the
history that was read (https://centrifugal.dev/docs/server/history_and_recovery). The moves
themselves (subscribing -> subscribed -> ended) are the sans-I/O table in session/channels.py.

Ordering rules, all enforced here and checked by tests/unit/node/test_session_machine.py:

1. A subscription's reply (or `subscribe` push) precedes its first publication: `activate` marks it
   live synchronously with writing the reply, then pushes what was buffered meanwhile.
2. Recovered publications come in the reply; buffered ones follow it, merged without duplicates or
   gaps (a gap ends the connection with 3010). A buffered publication of another epoch than the
   history read is a gap too: the stream started over meanwhile, and its offsets do not compare.
3. Nothing accepted is lost at the end: the hub holds a channel's publications until the end of the
   loop pass (see ARCHITECTURE.md, "per-pass batching"), so `end` and `close_subscriptions` deliver
   the channel's queue before the `unsubscribe` push or the close frame. Whatever way a subscription
   ends (client or server unsubscribe, expiry, insufficient state, disconnect, slow client,
   shutdown), its subscriber has every publication accepted before, or is told (2500 / 3010).
4. Join goes out once the subscription is live; leave only for one whose join went out.
5. The server's end of a subscription still subscribing (an API unsubscribe racing the client's
   subscribe) takes effect right after it goes live: reply, buffered publications, then the end.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
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
from rotary.session.session import Ended

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
    """Registers the subscription and computes its reply; undone again if anything fails.

    The connection must be open: a closed one would keep a subscriber nobody releases.
    """
    if client.closed:
        raise DisconnectError(codes.DISCONNECT_CONNECTION_CLOSED)
    node = client.node
    state = ChannelState(  # positional, in field order: see ChannelState
        channel,
        server_side,
        opts.positioned or opts.recoverable,  # positioned
        opts.push_join_leave,
        opts.emit_presence,
        opts.emit_join_leave,
        opts.expire_at,
        opts.chan_info,
        opts.delta,
        _tags_filter(request, opts),
        opts.server_side_refresh,
    )
    client.session.add_subscription(state)
    if opts.feed is not None:
        client.feeds[channel] = opts.feed
    node.hub.add_subscriber(channel, client, state)
    try:
        await node.sync_broker_subscription(channel)
        if opts.emit_presence:
            await node.presence_manager.add_presence(channel, client.id, client.client_info(opts.chan_info))
        result, recovered = await _position(client, channel, opts, request, state.tags_filter)
    except BaseException:
        if client.channels.get(channel) is state:
            end(client, channel, None)
        raise
    # Whether recovery was attempted, as centrifuge reports it: asked for by the client (even on a
    # channel that cannot recover) or forced by the server's cache recovery.
    auto_cache = opts.recoverable and opts.auto_cache_recover and opts.cache_recovery
    if request.recover or opts.recover_since is not None or auto_cache:  # false is proto3's unset
        result.was_recovering = True
    if opts.expire_at > 0 and not opts.server_side_refresh:  # otherwise the server refreshes it
        result.expires = True
        result.ttl = max(opts.expire_at - int(time.time()), 0)
    if opts.data:
        result.data = opts.data
    if opts.delta:
        result.delta = True
    buffered = state.take_buffered()
    if state.positioned:
        pending, ok = merge_buffered(recovered, buffered, result.offset, result.epoch)
    else:
        pending, ok = [pub for pub, _, _ in buffered], True
    if not ok:
        end(client, channel, None)
        raise DisconnectError(codes.DISCONNECT_INSUFFICIENT_STATE)
    if not pending:  # nothing recovered or buffered, the usual subscribe
        return Started(state, result, [], 0)
    seen = max(pub.offset for pub in pending)
    if recovered:
        shown = [pub for pub in recovered if state.wants(pub)]
        result.publications.extend(_recovered_for(state, shown, client.transport.protocol))
        pending = pending[len(recovered) :]
    return Started(state, result, [pub for pub in pending if state.delta or state.wants(pub)], seen)


def _tags_filter(request: pb.SubscribeRequest, opts: SubscribeOptions) -> TagsMatcher | None:
    """The subscriber's compiled tags filter, checked and allowed as for any subscription.

    With delta compression Centrifugo v6.9.1 applies it to recovered publications only (the delta
    chain then runs over the ones it kept) and sends every live publication: the fan-out's delta
    groups never consult it. Observed by running Centrifugo itself, whatever its docs suggest."""
    if not request.HasField("tf"):
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
    history = client.node.read_history
    meta_ttl = opts.history_meta_ttl
    recovered: list[pb.Publication] = []
    if not recovering:
        top, ok = (await history(channel, HistoryQuery(meta_ttl=meta_ttl))).position, False
    elif opts.cache_recovery:
        top, recovered, ok = await _recover_cache(client, channel, since, meta_ttl, tags_filter)
    else:
        top, recovered, ok = await _recover_stream(client, channel, since, meta_ttl)
    metrics = client.node.metrics
    if recovering and metrics is not None:
        metrics.recover(ok, len(recovered))
    if recovering and not ok and opts.reject_unrecovered:
        raise ClientError(codes.ERROR_UNRECOVERABLE_POSITION)
    result.epoch, result.offset = top.epoch, top.offset
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
    found = await client.node.read_history(
        channel, HistoryQuery(limit=limit, reverse=True, meta_ttl=meta_ttl)
    )
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
        found = await node.read_history(
            channel, HistoryQuery(since=since, limit=limit + 1 if limit > 0 else -1, meta_ttl=meta_ttl)
        )
    except UnrecoverablePositionError:
        return (await node.read_history(channel, HistoryQuery(meta_ttl=meta_ttl))).position, [], False
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
    publications, offset = result.publications, result.offset  # each read makes a new view
    last = publications[-1].offset if publications else offset
    offset = max(last, offset, started.seen_offset)
    delta_ready = bool(publications or started.pending)
    session = client.session
    session.activate_subscription(state, result.epoch, offset, delta_ready, client.loop_time(), time.time())
    protocol, uni = client.transport.protocol, client.transport.unidirectional
    for pub in started.pending:
        session.send_encoded(_pending_push(state, pub, protocol, uni))
    client.flush()
    feed = client.feeds.get(state.channel)
    if feed is not None:
        feed.attach(_FeedSink(client, state))
    if state.emit_join_leave:
        node = client.node
        if node.metrics is not None:
            node.metrics.broker_sent.add(("join",))
        node.spawn(node.broker.publish_join(state.channel, client.client_info(state.chan_info)))
    if state.end_requested is not None:
        end(client, state.channel, state.end_requested)


class _FeedSink:
    """A feed's way into its subscription; inert once that subscription has ended."""

    def __init__(self, client: Client, state: ChannelState) -> None:
        self._client = client
        self._state = state

    def _live(self) -> bool:
        client = self._client
        return not client.closed and client.channels.get(self._state.channel) is self._state

    def publication(self, data: bytes, tags: Mapping[str, str]) -> None:
        if not self._live():
            return
        client, channel = self._client, self._state.channel
        pub = pb.Publication(data=data, tags=tags)
        protocol, uni = client.transport.protocol, client.transport.unidirectional
        client.session.send_encoded(prepared.publication_push(channel, pub, protocol, uni))
        client.flush()

    def end(self, unsubscribe: codes.UnsubscribeCode) -> None:
        if self._live():
            end(self._client, self._state.channel, unsubscribe)


def _pending_push(state: ChannelState, pub: pb.Publication, protocol: ProtocolType, uni: bool) -> bytes:
    """A publication that arrived while subscribing; whole, so a delta subscriber gets a base."""
    if state.delta:
        return prepared.delta_publication_push(state.channel, pub, None, protocol, uni)
    return prepared.publication_push(state.channel, pub, protocol, uni)


async def subscribe_server_side(client: Client, channel: str, opts: SubscribeOptions) -> None:
    """A subscription the server makes for a connected client: announced with a `subscribe` push."""
    if client.closed:
        return
    started = await start_subscription(client, channel, opts, pb.SubscribeRequest(channel=channel), True)
    if client.closed:
        return
    r = started.result
    push = pb.Subscribe(
        recoverable=r.recoverable, epoch=r.epoch, offset=r.offset, positioned=r.positioned, data=r.data
    )
    client.session.send_push(pb.Push(channel=channel, subscribe=push))
    activate(client, started)


def end(client: Client, channel: str, unsubscribe: codes.UnsubscribeCode | None) -> None:
    """Ends one subscription of a connection, pushing `unsubscribe` with the code when one is given.

    The hub's queue for the channel goes out first (rule 3), then the push, then the node lets go of
    the channel (engine subscription, presence, leave). The server's end of a subscription that is
    still subscribing waits until it is live (rule 5), so the client sees its reply, then the end.
    """
    state = client.channels.get(channel)
    if state is None:
        return
    if unsubscribe is not None and state.status is SubscriptionStatus.SUBSCRIBING:
        state.end_requested = unsubscribe
        return
    client.flush()
    client.node.hub.flush_channel(channel)
    ended = client.session.end_subscription(channel, unsubscribe)
    if ended is None:
        return
    if unsubscribe is not None and client.node.metrics is not None:
        client.node.metrics.server_unsubscribe(unsubscribe.code)
    client.flush()
    release(client, [ended])


def deliver_before_close(client: Client) -> None:
    """Writes what the hub holds for this connection's channels, before its close frame (rule 3)."""
    hub = client.node.hub
    for channel in list(client.channels):
        hub.flush_channel(channel)


def release(client: Client, ended: list[Ended]) -> None:
    """The node's side of ended subscriptions: hub, engine subscription, presence and leave."""
    node = client.node
    for state, was_live in ended:
        channel = state.channel
        feed = client.feeds.pop(channel, None)
        if feed is not None:
            feed.close()
        if node.hub.remove_subscriber(channel, client):
            node.spawn(node.sync_broker_subscription(channel))
        if state.emit_presence:
            node.spawn(node.presence_manager.remove_presence(channel, client.id, client.user))
        # A subscription that failed or was cut short while subscribing never announced its join,
        # so it leaves silently (as in Centrifugo).
        if state.emit_join_leave and was_live:
            if node.metrics is not None:
                node.metrics.broker_sent.add(("leave",))
            node.spawn(node.broker.publish_leave(channel, client.client_info(state.chan_info)))
