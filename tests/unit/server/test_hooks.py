"""The server's Node hooks: Centrifugo's decision order for connect, subscribe, publish, presence,
history, refresh, sub_refresh and RPC, driven by real config objects and a real token verifier."""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import jwt
import pytest

from rotary.node.errors import ClientError, DisconnectError
from rotary.node.hooks import ConnectionInfo, Hooks, SubscribeOptions
from rotary.protocol import pb
from rotary.protocol.codec import ProtocolType
from rotary.server.channels import ChannelRules
from rotary.server.config.schema import ClientConfig, Config, PersonalChannelConfig, TokenConfig
from rotary.server.config.schema_channels import (
    ChannelConfig,
    ChannelOptions,
    NamespaceConfig,
    RpcConfig,
    RpcPingConfig,
)
from rotary.server.grants import namespace_subscription
from rotary.server.hooks import ServerHooks
from rotary.server.tokens import TokenVerifier

SECRET = "a-secret-long-enough-for-hs256-keys"
OTHER_SECRET = "another-secret-long-enough-for-hs256"
FLAGS = (False, True)


@dataclass(frozen=True)
class Client:
    """The attributes of a connection a hook may read, and nothing else."""

    user: str = "42"
    id: str = "client-1"
    conn_info: bytes = b'{"name":"alice"}'
    meta: bytes = b""
    transport_name: str = "websocket"
    protocol: ProtocolType = ProtocolType.JSON
    headers: Mapping[str, str] = field(default_factory=dict)
    subscribed: frozenset[str] = frozenset()

    def is_subscribed(self, channel: str) -> bool:
        return channel in self.subscribed

    def chan_info(self, channel: str) -> bytes:
        return b""


ANONYMOUS = Client(user="")


def permission_namespaces(kind: str) -> tuple[NamespaceConfig, ...]:
    """One namespace per combination of allow_<kind>_for_client/_subscriber/_anonymous."""
    spaces = []
    for for_client, for_subscriber, for_anonymous in itertools.product(FLAGS, repeat=3):
        options: dict[str, Any] = {
            f"allow_{kind}_for_client": for_client,
            f"allow_{kind}_for_subscriber": for_subscriber,
            f"allow_{kind}_for_anonymous": for_anonymous,
        }
        spaces.append(
            NamespaceConfig(
                name=f"{kind}{int(for_client)}{int(for_subscriber)}{int(for_anonymous)}",
                presence=True,
                history_size=10,
                history_ttl=60.0,
                **options,
            )
        )
    return tuple(spaces)


NAMESPACES = (
    NamespaceConfig(name="closed"),
    NamespaceConfig(name="clients", allow_subscribe_for_client=True),
    NamespaceConfig(name="everyone", allow_subscribe_for_client=True, allow_subscribe_for_anonymous=True),
    NamespaceConfig(name="anononly", allow_subscribe_for_anonymous=True),
    NamespaceConfig(name="users", allow_user_limited_channels=True),
    NamespaceConfig(name="users_open", allow_user_limited_channels=True, allow_subscribe_for_client=True),
    NamespaceConfig(
        name="rich",
        allow_subscribe_for_client=True,
        presence=True,
        join_leave=True,
        history_size=10,
        history_ttl=60.0,
        history_meta_ttl=600.0,
        allow_history_for_subscriber=True,
        allow_presence_for_subscriber=True,
        allowed_delta_types=("fossil",),
        allow_tags_filter=True,
    ),
    NamespaceConfig(
        name="anonrich",
        allow_subscribe_for_client=True,
        allow_subscribe_for_anonymous=True,
        presence=True,
        join_leave=True,
        history_size=10,
        history_ttl=60.0,
        allow_history_for_subscriber=True,
        allow_presence_for_subscriber=True,
    ),
    NamespaceConfig(
        name="asks",
        allow_subscribe_for_client=True,
        presence=True,
        join_leave=True,
        allow_positioning=True,
        allow_recovery=True,
        history_size=10,
        history_ttl=60.0,
    ),
    NamespaceConfig(
        name="forced",
        presence=True,
        join_leave=True,
        force_push_join_leave=True,
        force_recovery=True,
        force_positioning=True,
        force_recovery_mode="cache",
        history_size=1,
        history_ttl=60.0,
        allow_subscribe_for_client=True,
    ),
    NamespaceConfig(name="digits", allow_subscribe_for_client=True, channel_regex=r"^\d+$"),
    NamespaceConfig(name="maps", allow_subscribe_for_client=True, subscription_type="map"),
    NamespaceConfig(name="proxied", allow_subscribe_for_client=True, subscribe_proxy_enabled=True),
    NamespaceConfig(name="pubproxy", allow_publish_for_client=True, publish_proxy_enabled=True),
    NamespaceConfig(name="personal", presence=True),
    NamespaceConfig(name="json", allow_publish_for_client=True, publication_data_format="json"),
    *permission_namespaces("publish"),
    *permission_namespaces("presence"),
    *permission_namespaces("history"),
)


def make_config(**client: Any) -> Config:
    return Config(
        client=ClientConfig(token=TokenConfig(hmac_secret_key=SECRET), **client),
        channel=ChannelConfig(namespaces=NAMESPACES, history_meta_ttl=3600.0),
        rpc=RpcConfig(ping=RpcPingConfig(enabled=True)),
    )


def make_hooks(config: Config | None = None) -> ServerHooks:
    config = config or make_config()
    verifier = TokenVerifier(config.client.token, config.client.subscription_token)
    return ServerHooks(config, verifier)


def token(**claims: Any) -> str:
    claims.setdefault("exp", int(time.time()) + 3600)
    return jwt.encode(claims, SECRET, algorithm="HS256")


def expired_token(**claims: Any) -> str:
    return token(exp=int(time.time()) - 60, **claims)


def forged_token(**claims: Any) -> str:
    return jwt.encode(claims, OTHER_SECRET, algorithm="HS256")


def conn(headers: Mapping[str, str] | None = None) -> ConnectionInfo:
    return ConnectionInfo("client-1", "websocket", ProtocolType.JSON, headers=dict(headers or {}))


def connect_request(tok: str = "", subs: tuple[str, ...] = ()) -> pb.ConnectRequest:
    request = pb.ConnectRequest(token=tok)
    for channel in subs:
        request.subs[channel].CopyFrom(pb.SubscribeRequest())
    return request


async def code_of(awaitable: Any) -> int:
    """The reply error or disconnect code an awaited hook ends with (0 when it succeeds)."""
    try:
        await awaitable
    except ClientError as exc:
        return exc.code
    except DisconnectError as exc:
        return exc.disconnect.code
    return 0


def test_server_hooks_implement_the_node_contract() -> None:
    hooks: Hooks = make_hooks()
    assert isinstance(hooks, ServerHooks)


# Connect


async def test_connect_without_credentials_is_3501() -> None:
    assert await code_of(make_hooks().on_connecting(conn(), connect_request())) == 3501


@pytest.mark.parametrize("client", [{"allow_anonymous_connect_without_token": True}, {"insecure": True}])
async def test_connect_anonymous(client: dict[str, bool]) -> None:
    decision = await make_hooks(make_config(**client)).on_connecting(conn(), connect_request())
    assert (decision.user, decision.expire_at, decision.subscriptions) == ("", 0, {})


async def test_connect_with_token() -> None:
    exp = int(time.time()) + 100
    tok = token(sub="42", exp=exp, info={"name": "alice"}, meta={"plan": "pro"})
    decision = await make_hooks().on_connecting(conn(), connect_request(tok))
    assert (decision.user, decision.expire_at) == ("42", exp)
    assert decision.conn_info == b'{"name":"alice"}'
    assert decision.meta == b'{"plan":"pro"}'


async def test_insecure_connection_never_expires() -> None:
    decision = await make_hooks(make_config(insecure=True)).on_connecting(
        conn(), connect_request(token(sub="42"))
    )
    assert decision.expire_at == 0


@pytest.mark.parametrize(
    ("tok", "client", "code"),
    [
        (expired_token(sub="42"), {}, 109),
        (forged_token(sub="42"), {}, 3500),
        ("not-a-jwt", {}, 3500),
        (token(sub="42", channel="news"), {}, 3500),
        (token(sub=""), {"disallow_anonymous_connection_tokens": True}, 3507),
        (token(sub="42", channels=["nope:x"]), {}, 102),
        (token(sub="42", subs={"nope:x": {}}), {}, 102),
    ],
)
async def test_connect_token_failures(tok: str, client: dict[str, bool], code: int) -> None:
    assert (
        await code_of(make_hooks(make_config(**client)).on_connecting(conn(), connect_request(tok))) == code
    )


async def test_anonymous_token_allowed_by_default() -> None:
    decision = await make_hooks().on_connecting(conn(), connect_request(token(sub="")))
    assert decision.user == ""


async def test_token_channels_get_namespace_options() -> None:
    tok = token(sub="42", channels=["closed:a", "$private", "forced:b"])
    decision = await make_hooks().on_connecting(conn(), connect_request(tok))
    assert decision.subscriptions["closed:a"] == SubscribeOptions(history_meta_ttl=3600.0)
    assert "$private" in decision.subscriptions
    forced = decision.subscriptions["forced:b"]
    assert forced.emit_presence and forced.emit_join_leave and forced.push_join_leave
    assert forced.recoverable and forced.positioned and forced.cache_recovery


async def test_token_subs_win_over_channels_and_apply_overrides() -> None:
    override = {
        "presence": {"value": False},
        "force_recovery": {"value": False},
        "join_leave": {"value": True},
    }
    subs = {"forced:b": {"info": {"role": "x"}, "data": {"hello": 1}, "override": override}}
    tok = token(sub="42", channels=["closed:a"], subs=subs)
    decision = await make_hooks().on_connecting(conn(), connect_request(tok))
    assert list(decision.subscriptions) == ["forced:b"]
    granted = decision.subscriptions["forced:b"]
    assert (granted.chan_info, granted.data) == (b'{"role":"x"}', b'{"hello":1}')
    assert not granted.emit_presence and not granted.recoverable
    assert granted.emit_join_leave and granted.positioned


@pytest.mark.parametrize(
    ("namespace", "user", "channel"),
    [("", "42", "#42"), ("personal", "42", "personal:#42")],
)
async def test_personal_channel(namespace: str, user: str, channel: str) -> None:
    personal = PersonalChannelConfig(enabled=True, personal_channel_namespace=namespace)
    hooks = make_hooks(make_config(subscribe_to_user_personal_channel=personal))
    decision = await hooks.on_connecting(conn(), connect_request(token(sub=user)))
    assert list(decision.subscriptions) == [channel]
    assert decision.subscriptions[channel].emit_presence is (namespace == "personal")


async def test_personal_channel_skips_anonymous_and_needs_a_known_namespace() -> None:
    personal = PersonalChannelConfig(enabled=True)
    hooks = make_hooks(make_config(subscribe_to_user_personal_channel=personal, insecure=True))
    assert (await hooks.on_connecting(conn(), connect_request())).subscriptions == {}
    unknown = replace(personal, personal_channel_namespace="nope")
    hooks = make_hooks(make_config(subscribe_to_user_personal_channel=unknown))
    assert await code_of(hooks.on_connecting(conn(), connect_request(token(sub="42")))) == 102


@pytest.mark.parametrize(
    ("user", "client", "wanted", "granted"),
    [
        ("42", {}, ("clients:a", "closed:b", "$clients:c", "proxied:d", "digits:x"), {"clients:a"}),
        ("", {"allow_anonymous_connect_without_token": True}, ("clients:a", "everyone:b"), {"everyone:b"}),
        ("42", {}, ("users:r#42", "users:r#43", "users_open:r#43"), {"users:r#42"}),
        (
            "",
            {"insecure": True},
            ("closed:a", "users:r#43", "$x", "digits:1"),
            {"closed:a", "users:r#43", "digits:1"},
        ),
    ],
)
async def test_connect_channels_requested_by_the_client(
    user: str, client: dict[str, bool], wanted: tuple[str, ...], granted: set[str]
) -> None:
    tok = token(sub=user) if user else ""
    decision = await make_hooks(make_config(**client)).on_connecting(conn(), connect_request(tok, wanted))
    assert set(decision.subscriptions) == granted


async def test_connect_channel_in_unknown_namespace_is_3501() -> None:
    request = connect_request(token(sub="42"), ("nope:x",))
    assert await code_of(make_hooks().on_connecting(conn(), request)) == 3501


async def test_requested_channel_keeps_token_grant() -> None:
    subs = {"clients:a": {"info": {"from": "token"}}}
    request = connect_request(token(sub="42", subs=subs), ("clients:a",))
    decision = await make_hooks().on_connecting(conn(), request)
    assert decision.subscriptions["clients:a"].chan_info == b'{"from":"token"}'


async def test_user_from_trusted_header() -> None:
    hooks = make_hooks(make_config(user_id_http_header="X-User-Id"))
    decision = await hooks.on_connecting(conn({"x-user-id": "5"}), connect_request(subs=("clients:a",)))
    assert (decision.user, decision.subscriptions) == ("5", {})
    assert await code_of(hooks.on_connecting(conn(), connect_request())) == 3501
    anonymous = make_hooks(
        make_config(user_id_http_header="X-User-Id", allow_anonymous_connect_without_token=True)
    )
    assert (await anonymous.on_connecting(conn({"x-user-id": "5"}), connect_request())).user == ""


# Refresh


async def test_refresh() -> None:
    hooks = make_hooks()
    exp = int(time.time()) + 500
    decision = await hooks.on_refresh(
        Client(), pb.RefreshRequest(token=token(sub="42", exp=exp, info={"v": 2}))
    )
    assert (decision.expire_at, decision.expired, decision.conn_info) == (exp, False, b'{"v":2}')
    plain = await hooks.on_refresh(Client(), pb.RefreshRequest(token=token(sub="42")))
    assert plain.conn_info is None
    assert (await hooks.on_refresh(Client(), pb.RefreshRequest(token=expired_token(sub="42")))).expired


@pytest.mark.parametrize(
    ("tok", "code"),
    [("", 3501), (forged_token(sub="42"), 3500), (token(sub="43"), 3500), (token(sub=""), 3500)],
)
async def test_refresh_failures(tok: str, code: int) -> None:
    assert await code_of(make_hooks().on_refresh(Client(), pb.RefreshRequest(token=tok))) == code


# Subscribe


@pytest.mark.parametrize(
    ("namespace", "anonymous", "insecure"),
    list(itertools.product(("closed", "clients", "everyone", "anononly"), FLAGS, FLAGS)),
)
async def test_subscribe_permission_matrix(namespace: str, anonymous: bool, insecure: bool) -> None:
    options = {n.name: n for n in NAMESPACES}[namespace]
    expected = insecure or (
        options.allow_subscribe_for_client and (not anonymous or options.allow_subscribe_for_anonymous)
    )
    hooks = make_hooks(make_config(insecure=insecure))
    client = ANONYMOUS if anonymous else Client()
    code = await code_of(hooks.on_subscribe(client, pb.SubscribeRequest(channel=f"{namespace}:room")))
    assert code == (0 if expected else 103)


@pytest.mark.parametrize(
    ("request_fields", "code"),
    [
        ({"channel": ""}, 3501),
        ({"channel": "clients:a", "delta": "zstd"}, 3501),
        ({"channel": "clients:" + "a" * 248}, 107),
        ({"channel": "nope:a"}, 102),
        ({"channel": "clients:é"}, 107),
        ({"channel": "digits:12a"}, 107),
        ({"channel": "clients:a", "type": 1}, 103),
        ({"channel": "maps:a"}, 103),
        ({"channel": "proxied:a"}, 108),
        ({"channel": "$clients:a"}, 103),
        ({"channel": "clients:a", "tf": pb.FilterNode(key="k", cmp="eq", val="1")}, 107),
        ({"channel": "rich:a", "tf": pb.FilterNode(key="k", cmp="eq")}, 107),
    ],
)
async def test_subscribe_failures(request_fields: dict[str, Any], code: int) -> None:
    request = pb.SubscribeRequest(**request_fields)
    assert await code_of(make_hooks().on_subscribe(Client(), request)) == code


async def test_subscribe_checks_come_before_insecure_mode() -> None:
    hooks = make_hooks(make_config(insecure=True))
    for channel, code in (("nope:a", 102), ("clients:é", 107), ("$closed:a", 103)):
        assert await code_of(hooks.on_subscribe(Client(), pb.SubscribeRequest(channel=channel))) == code


async def test_subscription_type_must_match_the_namespace() -> None:
    hooks = make_hooks()
    assert await code_of(hooks.on_subscribe(Client(), pb.SubscribeRequest(channel="maps:a", type=1))) == 0
    assert await code_of(hooks.on_subscribe(Client(), pb.SubscribeRequest(channel="maps:a", type=2))) == 103


@pytest.mark.parametrize(
    ("channel", "user", "insecure", "code"),
    [
        ("users:room#42,43", "42", False, 0),
        ("users:room#42,43", "43", False, 0),
        ("users:room#42,43", "44", False, 103),
        ("users:room#42,43", "", False, 103),
        ("users_open:room#42", "44", False, 103),
        ("users_open:room#42", "42", False, 0),
        ("users:room#42", "44", True, 0),
        ("clients:room#42", "44", False, 0),
        ("closed:room#42", "42", False, 103),
    ],
)
async def test_user_limited_channels(channel: str, user: str, insecure: bool, code: int) -> None:
    hooks = make_hooks(make_config(insecure=insecure))
    client = Client(user=user)
    assert await code_of(hooks.on_subscribe(client, pb.SubscribeRequest(channel=channel))) == code


def sub_token(channel: str = "$closed:a", **claims: Any) -> str:
    claims.setdefault("sub", "42")
    return token(channel=channel, **claims)


@pytest.mark.parametrize(
    ("tok", "code"),
    [
        (sub_token(), 0),
        (sub_token(client="client-1"), 0),
        (sub_token(exp=int(time.time()) - 60), 109),
        (jwt.encode({"sub": "42", "channel": "$closed:a"}, OTHER_SECRET, algorithm="HS256"), 103),
        (token(sub="42"), 103),
        (sub_token("$closed:b"), 3500),
        (sub_token(sub="43"), 3500),
        (sub_token(sub=""), 3500),
        (sub_token(client="client-2"), 3500),
        (sub_token("nope:a"), 102),
    ],
)
async def test_private_channel_with_token(tok: str, code: int) -> None:
    request = pb.SubscribeRequest(channel="$closed:a", token=tok)
    assert await code_of(make_hooks().on_subscribe(Client(), request)) == code


async def test_token_grants_channel_info_data_expiry_and_overrides() -> None:
    exp = int(time.time()) + 300
    override = {"presence": {"value": True}, "force_positioning": {"value": True}}
    tok = sub_token("closed:a", exp=exp, info={"r": 1}, data={"d": 2}, override=override)
    granted = await make_hooks().on_subscribe(Client(), pb.SubscribeRequest(channel="closed:a", token=tok))
    assert (granted.chan_info, granted.data, granted.expire_at) == (b'{"r":1}', b'{"d":2}', exp)
    assert granted.emit_presence and granted.positioned and not granted.recoverable


async def test_anonymous_token_for_anonymous_client() -> None:
    tok = sub_token(sub="")
    request = pb.SubscribeRequest(channel="$closed:a", token=tok)
    assert await code_of(make_hooks().on_subscribe(ANONYMOUS, request)) == 0


async def test_forced_options_come_from_the_namespace() -> None:
    granted = await make_hooks().on_subscribe(Client(), pb.SubscribeRequest(channel="forced:a"))
    assert granted == SubscribeOptions(
        emit_presence=True,
        emit_join_leave=True,
        push_join_leave=True,
        recoverable=True,
        positioned=True,
        cache_recovery=True,
        history_meta_ttl=3600.0,
    )


@pytest.mark.parametrize(
    ("channel", "user", "granted"),
    [
        ("asks:a", "42", (True, True, False)),
        ("rich:a", "42", (True, True, True)),
        ("anonrich:a", "42", (True, True, True)),
        ("anonrich:a", "", (False, False, False)),
        ("clients:a", "42", (False, False, False)),
    ],
)
async def test_client_asks_for_recovery_positioning_join_leave(
    channel: str, user: str, granted: tuple[bool, bool, bool]
) -> None:
    """allow_recovery/allow_positioning, or history access as a subscriber; join/leave needs presence."""
    request = pb.SubscribeRequest(channel=channel, recoverable=True, positioned=True, join_leave=True)
    options = await make_hooks().on_subscribe(Client(user=user), request)
    assert (options.recoverable, options.positioned, options.push_join_leave) == granted


async def test_join_leave_needs_the_namespace_to_emit_them() -> None:
    no_join_leave = replace({n.name: n for n in NAMESPACES}["rich"], name="quiet", join_leave=False)
    config = make_config()
    hooks = make_hooks(
        replace(config, channel=replace(config.channel, namespaces=(*NAMESPACES, no_join_leave)))
    )
    options = await hooks.on_subscribe(Client(), pb.SubscribeRequest(channel="quiet:a", join_leave=True))
    assert not options.push_join_leave


async def test_insecure_grants_what_the_client_asks() -> None:
    hooks = make_hooks(make_config(insecure=True))
    request = pb.SubscribeRequest(channel="closed:a", recoverable=True, positioned=True, join_leave=True)
    options = await hooks.on_subscribe(ANONYMOUS, request)
    assert (options.recoverable, options.positioned, options.push_join_leave) == (True, True, False)


async def test_delta_tags_filter_and_reject_flag() -> None:
    hooks = make_hooks()
    tf = pb.FilterNode(op="and", nodes=[pb.FilterNode(key="k", cmp="in", vals=["1", "2"])])
    request = pb.SubscribeRequest(channel="rich:a", delta="fossil", tf=tf, flag=2)
    options = await hooks.on_subscribe(Client(), request)
    assert (options.delta, options.reject_unrecovered, options.history_meta_ttl) == ("fossil", True, 600.0)
    plain = await hooks.on_subscribe(
        Client(), pb.SubscribeRequest(channel="clients:a", delta="fossil", flag=1)
    )
    assert (plain.delta, plain.reject_unrecovered) == ("", False)


# Sub refresh


def sub_refresh(channel: str = "$closed:a", tok: str = "") -> pb.SubRefreshRequest:
    return pb.SubRefreshRequest(channel=channel, token=tok)


async def test_sub_refresh() -> None:
    exp = int(time.time()) + 300
    client = Client(subscribed=frozenset({"$closed:a"}))
    hooks = make_hooks()
    decision = await hooks.on_sub_refresh(client, sub_refresh(tok=sub_token(exp=exp, info={"v": 1})))
    assert (decision.expire_at, decision.expired, decision.chan_info) == (exp, False, b'{"v":1}')
    assert (await hooks.on_sub_refresh(client, sub_refresh(tok=sub_token()))).chan_info is None
    expired = await hooks.on_sub_refresh(client, sub_refresh(tok=sub_token(exp=int(time.time()) - 9)))
    assert expired.expired


@pytest.mark.parametrize(
    ("request_", "subscribed", "code"),
    [
        (sub_refresh(channel=""), True, 3501),
        (sub_refresh(tok=sub_token()), False, 103),
        (sub_refresh(), True, 107),
        (sub_refresh(tok=forged_token(sub="42", channel="$closed:a")), True, 3500),
        (sub_refresh(tok=sub_token("$closed:b")), True, 3500),
        (sub_refresh(tok=sub_token(sub="7")), True, 3500),
        (sub_refresh(tok=sub_token(client="other")), True, 3500),
        (sub_refresh(tok=sub_token("nope:x")), True, 102),
    ],
)
async def test_sub_refresh_failures(request_: pb.SubRefreshRequest, subscribed: bool, code: int) -> None:
    client = Client(subscribed=frozenset({request_.channel} if subscribed else ()))
    assert await code_of(make_hooks().on_sub_refresh(client, request_)) == code


# Publish, presence, history


def combos(kind: str) -> list[tuple[str, bool, bool, bool]]:
    spaces = [n.name for n in NAMESPACES if n.name.startswith(kind) and n.name[len(kind) :].isdigit()]
    return list(itertools.product(spaces, FLAGS, FLAGS, FLAGS))


def expected_access(namespace: str, anonymous: bool, subscribed: bool, insecure: bool) -> bool:
    for_client, for_subscriber, for_anonymous = (c == "1" for c in namespace[-3:])
    identified = not anonymous or for_anonymous
    return insecure or ((for_client or (for_subscriber and subscribed)) and identified)


def matrix_client(channel: str, anonymous: bool, subscribed: bool) -> Client:
    return Client(user="" if anonymous else "42", subscribed=frozenset({channel} if subscribed else ()))


@pytest.mark.parametrize(("namespace", "anonymous", "subscribed", "insecure"), combos("publish"))
async def test_publish_permission_matrix(
    namespace: str, anonymous: bool, subscribed: bool, insecure: bool
) -> None:
    channel = f"{namespace}:a"
    client = matrix_client(channel, anonymous, subscribed)
    hooks = make_hooks(make_config(insecure=insecure))
    code = await code_of(hooks.on_publish(client, pb.PublishRequest(channel=channel, data=b"{}")))
    assert code == (0 if expected_access(namespace, anonymous, subscribed, insecure) else 103)


@pytest.mark.parametrize(("namespace", "anonymous", "subscribed", "insecure"), combos("presence"))
async def test_presence_permission_matrix(
    namespace: str, anonymous: bool, subscribed: bool, insecure: bool
) -> None:
    channel = f"{namespace}:a"
    client = matrix_client(channel, anonymous, subscribed)
    code = await code_of(make_hooks(make_config(insecure=insecure)).on_presence(client, channel))
    assert code == (0 if expected_access(namespace, anonymous, subscribed, insecure) else 103)


@pytest.mark.parametrize(("namespace", "anonymous", "subscribed", "insecure"), combos("history"))
async def test_history_permission_matrix(
    namespace: str, anonymous: bool, subscribed: bool, insecure: bool
) -> None:
    channel = f"{namespace}:a"
    client = matrix_client(channel, anonymous, subscribed)
    hooks = make_hooks(make_config(insecure=insecure))
    code = await code_of(hooks.on_history(client, pb.HistoryRequest(channel=channel)))
    assert code == (0 if expected_access(namespace, anonymous, subscribed, insecure) else 103)


async def test_publish_decision_carries_history_and_publisher() -> None:
    hooks = make_hooks()
    client = Client(subscribed=frozenset({"publish010:a"}))
    decision = await hooks.on_publish(client, pb.PublishRequest(channel="publish010:a", data=b'{"x":1}'))
    assert decision.data == b'{"x":1}'
    options = decision.options
    assert (options.history_size, options.history_ttl, options.history_meta_ttl) == (10, 60.0, 3600.0)
    assert options.client_info == pb.ClientInfo(user="42", client="client-1", conn_info=b'{"name":"alice"}')


@pytest.mark.parametrize(
    ("channel", "data", "code"),
    [
        ("", b"{}", 3501),
        ("nope:a", b"{}", 102),
        ("publish100:é", b"{}", 107),
        ("closed:a", b"", 107),
        ("json:a", b"not json", 107),
        ("json:a", b"[1]", 0),
        ("pubproxy:a", b"{}", 108),
        ("closed:a", b"{}", 103),
    ],
)
async def test_publish_failures(channel: str, data: bytes, code: int) -> None:
    assert (
        await code_of(make_hooks().on_publish(Client(), pb.PublishRequest(channel=channel, data=data)))
        == code
    )


@pytest.mark.parametrize(
    ("channel", "code"),
    [("", 3501), ("nope:a", 102), ("presence100:é", 107), ("clients:a", 108), ("presence100:a", 0)],
)
async def test_presence_failures(channel: str, code: int) -> None:
    assert await code_of(make_hooks(make_config(insecure=True)).on_presence(Client(), channel)) == code


@pytest.mark.parametrize(
    ("channel", "code"),
    [("", 3501), ("nope:a", 102), ("history100:é", 107), ("clients:a", 108), ("history100:a", 0)],
)
async def test_history_failures(channel: str, code: int) -> None:
    hooks = make_hooks(make_config(insecure=True))
    assert await code_of(hooks.on_history(Client(), pb.HistoryRequest(channel=channel))) == code


async def test_history_returns_the_meta_ttl() -> None:
    hooks = make_hooks()
    client = Client(subscribed=frozenset({"rich:a"}))
    assert await hooks.on_history(client, pb.HistoryRequest(channel="rich:a")) == 600.0
    assert await hooks.on_history(Client(), pb.HistoryRequest(channel="history100:a")) == 3600.0


# RPC


async def test_rpc_ping() -> None:
    hooks = make_hooks()
    assert await hooks.on_rpc(Client(), pb.RPCRequest(method="ping")) == b""
    assert await code_of(hooks.on_rpc(Client(), pb.RPCRequest(method="other"))) == 104
    custom = make_hooks(replace(make_config(), rpc=RpcConfig(ping=RpcPingConfig(enabled=True, method="hi"))))
    assert await custom.on_rpc(Client(), pb.RPCRequest(method="hi")) == b""
    assert await code_of(custom.on_rpc(Client(), pb.RPCRequest(method="ping"))) == 104


async def test_rpc_without_any_handler_is_108() -> None:
    hooks = make_hooks(replace(make_config(), rpc=RpcConfig()))
    assert await code_of(hooks.on_rpc(Client(), pb.RPCRequest(method="ping"))) == 108


@pytest.mark.parametrize("flags", list(itertools.product([False, True], repeat=6)))
def test_namespace_subscription_sets_each_option_where_it_belongs(flags: tuple[bool, ...]) -> None:
    """namespace_subscription passes SubscribeOptions' fields positionally (for speed): each
    namespace option must still land in its own field."""
    presence, join_leave, push, recovery, positioning, auto = flags
    options = ChannelOptions(
        presence=presence,
        join_leave=join_leave,
        force_push_join_leave=push,
        force_recovery=recovery,
        force_positioning=positioning,
        force_recovery_mode="cache" if auto else "stream",
        auto_cache_recover=auto,
    )
    namespace = ChannelRules(ChannelConfig(without_namespace=options)).namespace("")
    assert namespace is not None
    assert namespace_subscription(namespace) == SubscribeOptions(
        emit_presence=presence,
        emit_join_leave=join_leave,
        push_join_leave=push,
        recoverable=recovery,
        positioned=positioning,
        cache_recovery=auto,
        auto_cache_recover=auto,
        history_meta_ttl=namespace.history_meta_ttl,
    )
