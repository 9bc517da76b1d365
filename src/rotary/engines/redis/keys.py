"""Names of rotary's Redis keys and PUB/SUB channels.

Every key of one channel carries the same hash tag ``{...}``, so in a Redis Cluster the stream, its
meta hash, idempotency results, presence and the channel's PUB/SUB name all live in one slot and one
Lua script may touch them together (sharded PUB/SUB requires the same of a script's SPUBLISH).
The layout is rotary's own; it is not shared with Centrifugo nodes.
See https://centrifugal.dev/docs/server/engines#redis-engine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["KeySpace", "hash_tag"]


def hash_tag(channel: str) -> str:
    """The part of a key Redis Cluster hashes: the channel itself when Redis can see it whole.

    A brace inside the name would end or restart the tag, so such channels are tagged by a digest.
    """
    if "{" in channel or "}" in channel:
        return hashlib.blake2b(channel.encode(), digest_size=12).hexdigest()
    return channel


@dataclass(frozen=True, slots=True)
class KeySpace:
    """All names under one prefix (``centrifugo`` by default, as in Centrifugo's config)."""

    prefix: str

    def stream(self, channel: str) -> str:
        """The kept publications: a Redis stream, or a list with ``history_use_lists``."""
        return f"{self.prefix}.history.{{{hash_tag(channel)}}}"

    def meta(self, channel: str) -> str:
        """Hash of the stream's position and version: epoch ``e``, top offset ``s``, ``v``, ``ve``."""
        return f"{self.prefix}.meta.{{{hash_tag(channel)}}}"

    def result(self, channel: str, idempotency_key: str) -> str:
        return f"{self.prefix}.result.{{{hash_tag(channel)}}}.{idempotency_key}"

    def pubsub(self, channel: str) -> str:
        return f"{self.prefix}.pub.{{{hash_tag(channel)}}}"

    def presence_expiry(self, channel: str) -> str:
        """Sorted set client id -> the Unix time its entry lapses."""
        return f"{self.prefix}.presence.expiry.{{{hash_tag(channel)}}}"

    def presence_info(self, channel: str) -> str:
        """Hash client id -> serialized ClientInfo."""
        return f"{self.prefix}.presence.info.{{{hash_tag(channel)}}}"

    def presence_users(self, channel: str) -> str:
        """Hash client id -> user id, so Lua can count distinct users without parsing ClientInfo."""
        return f"{self.prefix}.presence.user.{{{hash_tag(channel)}}}"

    def control(self) -> str:
        return f"{self.prefix}.control"

    def node(self, node_id: str) -> str:
        return f"{self.prefix}.node.{node_id}"
