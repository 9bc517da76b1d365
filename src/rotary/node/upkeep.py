"""Periodic work of a node that keeps shared state honest: presence refresh and position checks.

Presence entries in engines that expire them (Redis) are refreshed every
client.presence_update_interval. Positioned subscriptions are compared with their stream's top every
client.channel_position_check_delay, which catches publications lost without a later one to reveal
the gap; a subscriber behind the top at two checks in a row (so not merely racing an in-flight
publication), or on another epoch, is told as on any gap: unsubscribe 2500 or disconnect 3010.
See https://centrifugal.dev/docs/server/history_and_recovery#positioning.
One task per node for each job, never one per connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from rotary.engines.base import EngineError, HistoryQuery, StreamPosition
from rotary.session.channels import ChannelState, SubscriptionStatus

if TYPE_CHECKING:
    from rotary.node.client import Client
    from rotary.node.node import Node

log = logging.getLogger("rotary.node.upkeep")


def missed(state: ChannelState, position: StreamPosition) -> bool:
    """Whether a live positioned subscription is behind the stream's position or on another epoch."""
    if not state.positioned or state.status is not SubscriptionStatus.SUBSCRIBED:
        return False
    if state.epoch and state.epoch != position.epoch:
        return True
    return state.offset < position.offset


def _subscribers(node: Node, channel: str) -> Iterator[tuple[Client, ChannelState]]:
    for group in node.hub.subscribers.get(channel, {}).values():
        for sub in group.values():
            yield sub.client, sub.state


def report_positions(node: Node, positions: Mapping[str, StreamPosition]) -> None:
    """Ends the subscriptions that missed publications while the broker was cut off."""
    for channel, position in positions.items():
        for client in [c for c, state in _subscribers(node, channel) if missed(state, position)]:
            client.insufficient_state(channel)


def report_interruption(node: Node, channels: Iterable[str]) -> None:
    """Ends the unpositioned subscriptions to ``channels``: they may have missed publications
    that nothing else would reveal (positioned ones are checked against positions instead)."""
    for channel in channels:
        for client in [c for c, state in _subscribers(node, channel) if not state.positioned]:
            client.insufficient_state(channel)


async def refresh_presence(node: Node, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        for client in list(node.hub.clients.values()):
            for channel, state in list(client.channels.items()):
                if not state.emit_presence or client.closed:
                    continue
                try:
                    await node.presence_manager.add_presence(
                        channel, client.id, client.client_info(state.chan_info)
                    )
                except EngineError:
                    log.warning("presence refresh failed for channel %s", channel)


class PositionCheck:
    """Compares positioned subscribers with their stream's top, one channel read per channel."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._behind: dict[tuple[str, str], int] = {}
        """(client id, channel) -> the offset the subscriber was behind at the previous check."""

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.check()

    async def check(self) -> None:
        behind: dict[tuple[str, str], int] = {}
        for channel in self._positioned_channels():
            try:
                top = (await self._node.broker.history(channel, HistoryQuery())).position
            except EngineError:
                continue
            for client, state in list(_subscribers(self._node, channel)):
                if not missed(state, top):
                    continue
                key = (client.id, channel)
                stale = state.epoch and state.epoch != top.epoch
                if stale or self._behind.get(key) == state.offset:
                    client.insufficient_state(channel)
                else:
                    behind[key] = state.offset
        self._behind = behind

    def _positioned_channels(self) -> list[str]:
        return [
            channel
            for channel, groups in self._node.hub.subscribers.items()
            if any(sub.state.positioned for group in groups.values() for sub in group.values())
        ]
