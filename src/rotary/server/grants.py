"""What a subscription gets and who may do what: the rules every hook of the server shares.

``namespace_subscription`` is a namespace's grant before the client asks for anything; ``Access``
answers Centrifugo's three-way permission questions (any client, subscribers, anonymous ones).
See https://centrifugal.dev/docs/server/channel_permissions.
"""

from __future__ import annotations

from typing import Final

from rotary.node.errors import DisconnectError
from rotary.node.hooks import ClientView, SubscribeOptions
from rotary.protocol import codes
from rotary.server.channels import ChannelRules, Namespace, ResolvedChannel
from rotary.server.config.schema import ClientConfig
from rotary.server.tokens import Override

OVERRIDES: Final[tuple[tuple[str, str], ...]] = (
    ("presence", "emit_presence"),
    ("join_leave", "emit_join_leave"),
    ("force_push_join_leave", "push_join_leave"),
    ("force_recovery", "recoverable"),
    ("force_positioning", "positioned"),
)
"""Token (or proxy) ``override`` field -> the SubscribeOptions field it replaces."""


def namespace_subscription(namespace: Namespace, override: Override | None = None) -> SubscribeOptions:
    """What a subscription gets from its namespace alone, before the client asks for anything."""
    options = namespace.options
    # positional, in SubscribeOptions' field order: a class called with keywords gets them as a
    # dict first, and this runs on every subscribe
    granted = SubscribeOptions(
        b"",  # chan_info
        b"",  # data
        0,  # expire_at
        options.presence,  # emit_presence
        options.join_leave,  # emit_join_leave
        options.force_push_join_leave,  # push_join_leave
        options.force_recovery,  # recoverable
        options.force_positioning,  # positioned
        options.force_recovery_mode == "cache",  # cache_recovery
        options.auto_cache_recover,  # auto_cache_recover
        "",  # delta
        namespace.history_meta_ttl,
    )
    for source, target in OVERRIDES if override is not None else ():
        value = getattr(override, source)
        if value is not None:
            setattr(granted, target, value)
    return granted


def require_channel(channel: str) -> str:
    """A command naming no channel closes the connection (3501)."""
    if not channel:
        raise DisconnectError(codes.DISCONNECT_BAD_REQUEST)
    return channel


class Access:
    """Permission checks against the ``client`` section and one set of channel rules."""

    def __init__(self, client: ClientConfig, channels: ChannelRules) -> None:
        self.client = client
        self.channels = channels

    def checked_target(self, channel: str) -> ResolvedChannel:
        """Name present (else 3501), namespace known (else 102), name valid (else 107)."""
        target = self.channels.resolve(require_channel(channel))
        self.channels.check_name(target)
        return target

    @staticmethod
    def open_to(target: ResolvedChannel, user: str) -> bool:
        """allow_subscribe_for_client (plus _for_anonymous for anonymous users); a user list overrules it."""
        options = target.options
        anonymous_ok = user != "" or options.allow_subscribe_for_anonymous
        return options.allow_subscribe_for_client and anonymous_ok and not target.user_limited

    def permitted(
        self, client: ClientView, *, for_client: bool, for_subscriber: bool, for_anonymous: bool
    ) -> bool:
        """Centrifugo's three-way rule: any client, or subscribers; anonymous ones only when allowed."""
        identified = client.user != "" or for_anonymous
        return ((for_client or for_subscriber) and identified) or self.client.insecure

    def presence(self, client: ClientView, target: ResolvedChannel, *, subscribed: bool) -> bool:
        options = target.options
        return self.permitted(
            client,
            for_client=options.allow_presence_for_client,
            for_subscriber=options.allow_presence_for_subscriber and subscribed,
            for_anonymous=options.allow_presence_for_anonymous,
        )

    def history(self, client: ClientView, target: ResolvedChannel, *, subscribed: bool) -> bool:
        options = target.options
        return self.permitted(
            client,
            for_client=options.allow_history_for_client,
            for_subscriber=options.allow_history_for_subscriber and subscribed,
            for_anonymous=options.allow_history_for_anonymous,
        )
