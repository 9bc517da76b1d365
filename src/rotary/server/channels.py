"""Channel names under a Centrifugo channel config: namespaces, name rules, data formats.

A channel name carries its own policy: an optional private prefix (``$``), a namespace before the
first boundary (``chat:``), and an optional user list after the user boundary (``dialog#1,2``).
Everything here is a pure function of the ``channel`` config section, computed once per config.
See https://centrifugal.dev/docs/server/channels and
https://centrifugal.dev/docs/server/channel_permissions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import orjson

from rotary.engines.base import PublishOptions
from rotary.node.errors import ClientError
from rotary.protocol import json_depth, pb, tags_filter
from rotary.protocol.codes import ERROR_BAD_REQUEST, ERROR_UNKNOWN_CHANNEL
from rotary.server.config.schema_channels import ChannelConfig, ChannelOptions

DEFAULT_CHANNEL_MAX_LENGTH: Final = 255
"""centrifuge's channel length limit when ``channel.max_length`` is 0."""


@dataclass(frozen=True, slots=True)
class Namespace:
    """One namespace's options with the channel-section defaults already folded in."""

    name: str
    options: ChannelOptions
    regex: re.Pattern[str] | None
    data_format: str
    """The namespace's publication_data_format, or the channel section's when it sets none."""
    history_meta_ttl: float
    """The namespace's history_meta_ttl, or the channel section's when it sets none."""
    publish_defaults: PublishOptions
    """How a publication into the namespace is kept when nothing else is asked (history and delta
    settings): built once, as each construction of the ten-field options costs about 20k
    instructions. Shared, so never mutated (its ``tags`` included)."""

    @property
    def history_enabled(self) -> bool:
        """History exists only when both its size and its lifetime are set."""
        return self.options.history_size > 0 and self.options.history_ttl > 0


@dataclass(slots=True)
class ResolvedChannel:
    """A channel name taken apart: its namespace, its name inside it, its private and user marks.

    Not frozen: a frozen dataclass sets each field through ``object.__setattr__``, about a
    microsecond per subscribe (issue 15); nothing changes one once it is resolved."""

    channel: str
    rest: str
    """The part after the namespace boundary; the whole name when there is no namespace."""
    namespace: Namespace
    private: bool
    user_limited: bool
    """The name has a user list and its namespace honours user lists."""
    options: ChannelOptions
    """The namespace's options (``namespace.options``), a field rather than a property: the
    subscribe rules read it about ten times per subscribe."""

    def publish_options(self) -> PublishOptions:
        """How a publication into this channel is kept: the namespace's history and delta settings."""
        return self.namespace.publish_defaults


class ChannelRules:
    """Resolves channel names against one channel config; on a config reload, build a new one and
    :meth:`adopt` it."""

    def __init__(self, channel: ChannelConfig) -> None:
        self._section = channel
        self._without_namespace = self._namespace("", channel.without_namespace)
        self._namespaces = {ns.name: self._namespace(ns.name, ns) for ns in channel.namespaces}

    def adopt(self, fresh: ChannelRules) -> None:
        """Takes ``fresh``'s rules in one step (config reload): every holder of this object, such as
        the server API, resolves channels by the new config from its next call on."""
        self._section, self._without_namespace, self._namespaces = (
            fresh._section,
            fresh._without_namespace,
            fresh._namespaces,
        )

    def _namespace(self, name: str, options: ChannelOptions) -> Namespace:
        section = self._section
        history_meta_ttl = options.history_meta_ttl or section.history_meta_ttl
        return Namespace(
            name=name,
            options=options,
            regex=re.compile(options.channel_regex) if options.channel_regex else None,
            data_format=options.publication_data_format or section.publication_data_format,
            history_meta_ttl=history_meta_ttl,
            publish_defaults=PublishOptions(
                history_size=options.history_size,
                history_ttl=options.history_ttl,
                history_meta_ttl=history_meta_ttl,
                use_delta=options.delta_publish,
            ),
        )

    def namespace(self, name: str) -> Namespace | None:
        """Options of a namespace by name; the empty name is ``without_namespace``."""
        return self._without_namespace if name == "" else self._namespaces.get(name)

    def resolve(self, channel: str) -> ResolvedChannel:
        """Takes a name apart; a namespace that is not configured is error 102 "unknown channel"."""
        section = self._section
        name, rest = "", channel
        stripped = channel.removeprefix(section.private_prefix) if section.private_prefix else channel
        if section.namespace_boundary and section.namespace_boundary in stripped:
            name, rest = stripped.split(section.namespace_boundary, 1)
        namespace = self.namespace(name)
        if namespace is None:
            raise ClientError(ERROR_UNKNOWN_CHANNEL)
        return ResolvedChannel(  # positional: keywords would be gathered into a dict first
            channel,
            rest,
            namespace,
            self.is_private(channel),
            namespace.options.allow_user_limited_channels and self.has_user_list(channel),  # user_limited
            namespace.options,
        )

    def is_private(self, channel: str) -> bool:
        prefix = self._section.private_prefix
        return bool(prefix) and channel.startswith(prefix)

    def has_user_list(self, channel: str) -> bool:
        boundary = self._section.user_boundary
        return bool(boundary) and boundary in channel

    def user_allowed(self, channel: str, user: str) -> bool:
        """Whether ``user`` is in the channel's user list (``dialog#1,2``); no list allows anyone."""
        boundary, separator = self._section.user_boundary, self._section.user_separator
        if not boundary or boundary not in channel:
            return True
        users = channel.rsplit(boundary, 1)[1]
        return user in users.split(separator) if separator else user == users

    def valid_name(self, resolved: ResolvedChannel) -> bool:
        """A namespace regex, when set, replaces the ASCII-only rule; it may match anywhere in the name."""
        regex = resolved.namespace.regex
        if regex is not None:
            return regex.search(resolved.rest) is not None
        return resolved.channel.isascii()

    def check_name(self, resolved: ResolvedChannel) -> None:
        """Error 107 "bad request" for a name its namespace does not accept."""
        if not self.valid_name(resolved):
            raise ClientError(ERROR_BAD_REQUEST)

    def check_length(self, channel: str) -> None:
        """Error 107 for a name longer than ``channel.max_length`` bytes (checked on subscribe);
        0 is centrifuge's default of 255."""
        limit = self._section.max_length or DEFAULT_CHANNEL_MAX_LENGTH
        if len(channel.encode()) > limit:
            raise ClientError(ERROR_BAD_REQUEST)

    def personal_channel(self, user: str, namespace: str) -> str:
        """The channel every connection of ``user`` is subscribed to when personal channels are on."""
        section = self._section
        own = section.user_boundary + user
        return f"{namespace}{section.namespace_boundary}{own}" if namespace else own

    def check_data(self, resolved: ResolvedChannel, data: bytes) -> None:
        """Error 107 when publication data does not fit the namespace's publication_data_format."""
        if not _DATA_FORMATS.get(resolved.namespace.data_format, _non_empty)(data):
            raise ClientError(ERROR_BAD_REQUEST)

    def publish_options(self, channel: str) -> PublishOptions:
        """How a server-side publication into ``channel`` is kept; 102 for an unknown namespace."""
        return self.resolve(channel).publish_options()


def _non_empty(data: bytes) -> bool:
    return len(data) > 0


def _reject_constant(name: str) -> object:
    raise ValueError(name)


def _is_json(data: bytes) -> bool:
    """Strict JSON: orjson first, the standard library for numbers beyond 64 bits, never NaN."""
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            json.loads(data, parse_constant=_reject_constant)
        except ValueError:
            return False
        except RecursionError:  # deeper than the scanner goes (Centrifugo takes any depth)
            return _is_deep_json(data)
    return True


def _is_deep_json(data: bytes) -> bool:
    try:
        json_depth.loads(data)
    except json_depth.InvalidJson:
        return False
    return True


def _is_json_object(data: bytes) -> bool:
    body = data.strip(b" \t\r\n")
    return body.startswith(b"{") and body.endswith(b"}") and _is_json(body)


def _any(data: bytes) -> bool:
    return True


_DATA_FORMATS: Final[dict[str, Callable[[bytes], bool]]] = {
    "": _non_empty,
    "json": _is_json,
    "json_object": _is_json_object,
    "binary": _any,
}
"""publication_data_format -> acceptance test; the empty (default) format only refuses empty data."""


def valid_tags_filter(node: pb.FilterNode) -> bool:
    """Whether a subscriber's tags filter tree is well formed (the rules live with the matcher).

    See https://centrifugal.dev/docs/server/publication_filtering.
    """
    return tags_filter.is_valid(node)
