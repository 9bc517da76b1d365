"""Client commands over WebSocket, JSON and Protobuf, against rotary and Centrifugo side by side.

Every command of the client protocol and its error paths (channels, permissions, limits, tokens,
unknown commands, bad frames, commands before connect, duplicates), then recovery, positioning,
cache mode, presence, join/leave, delta and tags filters. Replies, pushes and close codes and
reasons must be the same. See https://centrifugal.dev/docs/transports/client_protocol.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from differential.conftest import Pair
from differential.runner import (
    Api,
    Closed,
    Cmd,
    Open,
    Pushes,
    Scenario,
    Send,
    alive,
    check,
    connect,
    params,
    sub,
    token,
    ws,
)
from rotary.protocol import pb

LONG = "chat:" + "x" * 80


def sub_token(user: str, channel: str, **claims: object) -> str:
    return token(user, channel=channel, **claims)


SCENARIOS = [
    # connect
    Scenario("connect", [Open(), connect("u1")]),
    Scenario(
        "connect-with-name-version-data", [Open(), connect("u2", name="sdk", version="1.0", data={"d": 1})]
    ),
    Scenario("connect-no-token", [Open(), Cmd({"connect": {}}), Closed()]),
    Scenario("connect-garbage-token", [Open(), Cmd({"connect": {"token": "not-a-jwt"}}), Closed()]),
    Scenario(
        "connect-wrong-secret",
        [
            Open(),
            Cmd({"connect": {"token": token("u3", secret="another-secret-of-at-least-32-bytes!!")}}),
            Closed(),
        ],
    ),
    Scenario("connect-expired-token", [Open(), Cmd({"connect": {"token": token("u4", exp=1000)}})]),
    Scenario("connect-token-expiring", [Open(), connect("", token=token("u5", exp=4102444800))]),
    Scenario("connect-token-info", [Open(), Cmd({"connect": {"token": token("u6", info={"name": "x"})}})]),
    Scenario(
        "connect-token-channels",
        [Open(), Cmd({"connect": {"token": token("u7", channels=["chat:ct1", "plain:ct1"])}})],
    ),
    Scenario(
        "connect-token-subs",
        [Open(), Cmd({"connect": {"token": token("u8", subs={"chat:ct2": {"data": {"x": 1}}})}})],
    ),
    Scenario(
        "connect-token-bad-channel",
        [Open(), Cmd({"connect": {"token": token("u9", channels=["nope:ct3"])}})],
    ),
    Scenario("connect-token-empty-sub", [Open(), Cmd({"connect": {"token": token("")}}), alive()]),
    Scenario("connect-twice", [Open(), connect("u10"), connect("u10"), Closed()]),
    Scenario(
        "connect-subs-recover",
        [
            Api("publish", {"channel": "chat:ct4", "data": {"n": 1}}),
            Open(),
            connect("u11", subs={"chat:ct4": {"recover": True, "offset": 0, "epoch": "$EPOCH"}}),
        ],
    ),
    # before connect, unknown commands, bad frames
    Scenario("subscribe-before-connect", [Open(), sub("chat:bc1"), Closed()]),
    Scenario("ping-before-connect", [Open(), Cmd({"ping": {}}), Closed()]),
    Scenario("rpc-before-connect", [Open(), alive(), Closed()]),
    Scenario(
        "publish-before-connect", [Open(), Cmd({"publish": {"channel": "plain:bc2", "data": {}}}), Closed()]
    ),
    Scenario("empty-command", [*ws(Cmd({}), Closed(), user="u12")]),
    Scenario("command-without-id", [*ws(Cmd({"rpc": {"method": "probe"}}, id=0), alive(), user="u13")]),
    Scenario("connect-without-id", [Open(), Cmd({"connect": {"token": token("u14")}}, id=0), alive()]),
    Scenario("bad-json-frame", [Open(), Send("{not json"), Closed()], protocols=("json",)),
    Scenario(
        "bad-json-frame-after-connect", [*ws(Send("{not json"), Closed(), user="u15")], protocols=("json",)
    ),
    Scenario("json-array-frame", [Open(), Send("[]"), Closed()], protocols=("json",)),
    # Keys fold as segmentio/encoding/json folds them: ASCII case is ignored; in a key with a
    # non-ASCII rune the long s is an "s" and the Kelvin sign a "k", but a plain "s" or "k" is not.
    Scenario(
        "json-key-case-method", [Open(), Cmd({"CONNECT": {"token": token("u40")}})], protocols=("json",)
    ),
    Scenario("json-key-case-field", [Open(), Cmd({"connect": {"Token": token("u41")}})], protocols=("json",)),
    Scenario(
        "json-key-kelvin", [Open(), Cmd({"connect": {"to\u212aen": token("u42")}})], protocols=("json",)
    ),
    Scenario(
        "json-key-long-s-everywhere",
        [*ws(Cmd({"\u017fub\u017fcribe": {"channel": "chat:f1"}}), user="u43")],
        protocols=("json",),
    ),
    Scenario(
        "json-key-long-s-and-plain-s",
        [*ws(Cmd({"\u017fubscribe": {"channel": "chat:f2"}}), Closed(), user="u44")],
        protocols=("json",),
    ),
    Scenario(
        "json-wrong-type",
        [*ws(Send('{"id": 5, "subscribe": {"channel": 1}}'), Closed(), user="u16")],
        protocols=("json",),
    ),
    Scenario(
        "json-unknown-field",
        [*ws(Cmd({"rpc": {"method": "m"}, "nosuch": {}}), user="u17")],
        protocols=("json",),
    ),
    Scenario(
        "json-two-commands-one-frame",
        [
            *ws(
                Send('{"id": 7, "rpc": {"method": "x"}}\n{"id": 8, "rpc": {"method": "y"}}'),
                alive(),
                user="u18",
            ),
        ],
        protocols=("json",),
    ),
    Scenario("binary-frame-on-json", [*ws(Send(b"\x00\x01"), Closed(), user="u19")], protocols=("json",)),
    Scenario("bad-protobuf-frame", [Open(), Send(b"\xff\xff\xff"), Closed()], protocols=("protobuf",)),
    Scenario(
        "text-frame-on-protobuf",
        [Open(), Send('{"id": 1, "connect": {}}'), Closed()],
        protocols=("protobuf",),
    ),
    # subscribe
    Scenario("subscribe", [*ws(sub("chat:s1"), user="s1")]),
    Scenario("subscribe-duplicate", [*ws(sub("chat:s2"), sub("chat:s2"), alive(), user="s2")]),
    Scenario("subscribe-unknown-namespace", [*ws(sub("nope:s3"), alive(), user="s3")]),
    Scenario("subscribe-no-permission", [*ws(sub("locked:s4"), alive(), user="s4")]),
    Scenario("subscribe-default-namespace", [*ws(sub("s5"), alive(), user="s5")]),
    Scenario("subscribe-too-long", [*ws(sub(LONG), alive(), user="s6")]),
    Scenario("subscribe-with-token", [*ws(sub("locked:s7", token=sub_token("s7", "locked:s7")), user="s7")]),
    Scenario(
        "subscribe-token-other-channel",
        [*ws(sub("locked:s8", token=sub_token("s8", "locked:other")), alive(), user="s8")],
    ),
    Scenario(
        "subscribe-token-other-user",
        [*ws(sub("locked:s9", token=sub_token("zz", "locked:s9")), alive(), user="s9")],
    ),
    Scenario(
        "subscribe-token-expired",
        [
            *ws(
                sub("locked:s10", token=sub_token("s10", "locked:s10", exp=1000)),
                alive(),
                user="s10",
            )
        ],
    ),
    Scenario("subscribe-token-garbage", [*ws(sub("locked:s11", token="garbage"), alive(), user="s11")]),
    Scenario(
        "subscribe-token-wrong-secret",
        [
            *ws(
                sub("locked:s12", token=token("s12", secret="x" * 40, channel="locked:s12")),
                alive(),
                user="s12",
            )
        ],
    ),
    Scenario(
        "subscribe-user-limited",
        [*ws(sub("chat:s13#s13"), sub("chat:s13#other"), alive(), user="s13")],
    ),
    Scenario("subscribe-with-data", [*ws(sub("chat:s14", data={"d": 1}), user="s14")]),
    Scenario(
        "subscribe-token-info",
        [*ws(sub("locked:s15", token=sub_token("s15", "locked:s15", info={"i": 1})), user="s15")],
    ),
    # unsubscribe
    Scenario(
        "unsubscribe",
        [
            *ws(
                sub("chat:us1"),
                Cmd({"unsubscribe": {"channel": "chat:us1"}}),
                Cmd({"unsubscribe": {"channel": "chat:us1"}}),
                user="us1",
            )
        ],
    ),
    Scenario(
        "unsubscribe-unknown-namespace",
        [*ws(Cmd({"unsubscribe": {"channel": "nope:us2"}}), alive(), user="us2")],
    ),
    # publish
    Scenario(
        "publish-subscribed",
        [
            *ws(
                sub("stream:p1"),
                Cmd({"publish": {"channel": "stream:p1", "data": {"m": 1}}}),
                Pushes(1),
                user="p1",
            )
        ],
    ),
    Scenario(
        "publish-not-subscribed",
        [*ws(Cmd({"publish": {"channel": "chat:p2", "data": {}}}), alive(), user="p2")],
    ),
    Scenario("publish-for-client", [*ws(Cmd({"publish": {"channel": "plain:p3", "data": {}}}), user="p3")]),
    # Invalid UTF-8 inside a JSON string: Centrifugo's decoder lets it through and relays the bytes
    # (a browser subscriber then closes with 1007); rotary's decoder refuses the frame (3501).
    Scenario(
        "publish-invalid-utf8-string",
        [
            *ws(
                Send(b'{"id": 9, "publish": {"channel": "plain:p6", "data": {"s": "\xff\xfe"}}}'),
                Closed(),
                user="p6",
            )
        ],
        protocols=("json",),
    ),
    Scenario(
        "publish-locked",
        [*ws(Cmd({"publish": {"channel": "locked:p4", "data": {}}}), alive(), user="p4")],
    ),
    Scenario(
        "publish-unknown-namespace",
        [*ws(Cmd({"publish": {"channel": "nope:p5", "data": {}}}), alive(), user="p5")],
    ),
    Scenario("publish-no-data", [*ws(Cmd({"publish": {"channel": "plain:p6"}}), alive(), user="p6")]),
    # presence, presence_stats, history
    Scenario(
        "presence",
        [
            *ws(
                sub("chat:pr1"),
                Cmd({"presence": {"channel": "chat:pr1"}}),
                Cmd({"presence_stats": {"channel": "chat:pr1"}}),
                user="pr1",
            )
        ],
    ),
    Scenario(
        "presence-not-subscribed",
        [
            *ws(
                Cmd({"presence": {"channel": "chat:pr2"}}),
                Cmd({"presence_stats": {"channel": "chat:pr2"}}),
                user="pr2",
            )
        ],
    ),
    Scenario(
        "presence-not-enabled",
        [
            *ws(
                sub("plain:pr3"),
                Cmd({"presence": {"channel": "plain:pr3"}}),
                Cmd({"presence_stats": {"channel": "plain:pr3"}}),
                user="pr3",
            )
        ],
    ),
    Scenario(
        "history",
        [
            Api("publish", {"channel": "chat:h1", "data": {"n": 1}}),
            Api("publish", {"channel": "chat:h1", "data": {"n": 2}}),
            *ws(
                sub("chat:h1"),
                Cmd({"history": {"channel": "chat:h1", "limit": -1}}),
                Cmd({"history": {"channel": "chat:h1", "limit": 1, "reverse": True}}),
                user="h1",
            ),
        ],
    ),
    # Centrifugo's JSON always writes publications, epoch and offset of a history result, even empty.
    Scenario(
        "history-empty",
        [
            *ws(
                sub("chat:h4"),
                Cmd({"history": {"channel": "chat:h4"}}),
                Cmd({"history": {"channel": "chat:h4", "limit": -1}}),
                user="h4",
            )
        ],
    ),
    Scenario("history-not-subscribed", [*ws(Cmd({"history": {"channel": "chat:h2"}}), user="h2")]),
    Scenario(
        "history-not-enabled", [*ws(sub("plain:h3"), Cmd({"history": {"channel": "plain:h3"}}), user="h3")]
    ),
    Scenario(
        "history-since",
        [
            Api("publish", {"channel": "chat:h4", "data": {"n": 1}}),
            Api("publish", {"channel": "chat:h4", "data": {"n": 2}}),
            *ws(
                sub("chat:h4"),
                Cmd(
                    {
                        "history": {
                            "channel": "chat:h4",
                            "limit": -1,
                            "since": {"offset": 1, "epoch": "$EPOCH"},
                        }
                    }
                ),
                user="h4",
            ),
        ],
    ),
    # rpc, send, refresh, sub_refresh, ping
    Scenario("rpc", [*ws(Cmd({"rpc": {"method": "m", "data": {}}}), alive(), user="r1")]),
    Scenario("send", [*ws(Cmd({"send": {"data": {}}}, id=0), alive(), user="r2")]),
    Scenario("refresh-not-expiring", [*ws(Cmd({"refresh": {"token": token("r3")}}), alive(), user="r3")]),
    Scenario(
        "refresh",
        [
            Open(),
            connect("", token=token("r4", exp=4102444800)),
            Cmd({"refresh": {"token": token("r4", exp=4102444900)}}),
        ],
    ),
    Scenario(
        "refresh-other-user",
        [
            Open(),
            connect("", token=token("r5", exp=4102444800)),
            Cmd({"refresh": {"token": token("zz", exp=4102444900)}}),
            Closed(),
        ],
    ),
    Scenario(
        "refresh-garbage",
        [
            Open(),
            connect("", token=token("r6", exp=4102444800)),
            Cmd({"refresh": {"token": "garbage"}}),
            Closed(),
        ],
    ),
    Scenario(
        "sub-refresh-not-subscribed",
        [
            *ws(
                Cmd({"sub_refresh": {"channel": "locked:r7", "token": sub_token("r7", "locked:r7")}}),
                alive(),
                user="r7",
            )
        ],
    ),
    Scenario(
        "sub-refresh",
        [
            *ws(
                sub("locked:r8", token=sub_token("r8", "locked:r8", exp=4102444800)),
                Cmd(
                    {
                        "sub_refresh": {
                            "channel": "locked:r8",
                            "token": sub_token("r8", "locked:r8", exp=4102444900),
                        }
                    }
                ),
                user="r8",
            )
        ],
    ),
    Scenario("ping", [*ws(Cmd({"ping": {}}), Closed(), user="r9")]),
    # recovery, positioning, cache mode
    Scenario(
        "recover",
        [
            Api("publish", {"channel": "chat:rc1", "data": {"n": 1}}),
            Api("publish", {"channel": "chat:rc1", "data": {"n": 2}}),
            *ws(sub("chat:rc1", recover=True, offset=1, epoch="$EPOCH"), user="rc1"),
        ],
    ),
    Scenario(
        "recover-wrong-epoch",
        [
            Api("publish", {"channel": "chat:rc2", "data": {"n": 1}}),
            *ws(sub("chat:rc2", recover=True, offset=0, epoch="wrong"), user="rc2"),
        ],
    ),
    Scenario(
        "recover-too-old",
        [
            *[Api("publish", {"channel": "chat:rc3", "data": {"n": n}}) for n in range(8)],
            *ws(sub("chat:rc3", recover=True, offset=1, epoch="$EPOCH"), user="rc3"),
        ],
    ),
    Scenario(
        "recover-future-offset",
        [
            Api("publish", {"channel": "chat:rc4", "data": {"n": 1}}),
            *ws(sub("chat:rc4", recover=True, offset=9, epoch="$EPOCH"), user="rc4"),
        ],
    ),
    Scenario(
        "recover-recoverable",
        [
            Api("publish", {"channel": "chat:rc6", "data": {"n": 1}}),
            Api("publish", {"channel": "chat:rc6", "data": {"n": 2}}),
            *ws(sub("chat:rc6", recover=True, recoverable=True, offset=1, epoch="$EPOCH"), user="rc6"),
        ],
    ),
    Scenario(
        "recover-recoverable-wrong-epoch",
        [
            Api("publish", {"channel": "chat:rc7", "data": {"n": 1}}),
            *ws(sub("chat:rc7", recover=True, recoverable=True, offset=0, epoch="wrong"), user="rc7"),
        ],
    ),
    Scenario(
        "recover-recoverable-too-old",
        [
            *[Api("publish", {"channel": "chat:rc8", "data": {"n": n}}) for n in range(8)],
            *ws(sub("chat:rc8", recover=True, recoverable=True, offset=1, epoch="$EPOCH"), user="rc8"),
        ],
    ),
    Scenario(
        "recover-recoverable-nothing-missed",
        [
            Api("publish", {"channel": "chat:rc9", "data": {"n": 1}}),
            *ws(sub("chat:rc9", recover=True, recoverable=True, offset=1, epoch="$EPOCH"), user="rc9"),
        ],
    ),
    Scenario(
        "recoverable-without-recover",
        [*ws(sub("chat:rc10", recoverable=True), user="rc10")],
    ),
    Scenario("recover-not-allowed", [*ws(sub("plain:rc5", recover=True), alive(), user="rc5")]),
    Scenario(
        "positioned",
        [
            *ws(
                sub("stream:ps1"),
                Api("publish", {"channel": "stream:ps1", "data": {"n": 1}}),
                Pushes(1),
                user="ps1",
            )
        ],
    ),
    Scenario("positioned-asked", [*ws(sub("chat:ps2", positioned=True), user="ps2")]),
    Scenario("positioned-not-allowed", [*ws(sub("plain:ps3", positioned=True), user="ps3")]),
    Scenario(
        "cache-mode",
        [
            Api("publish", {"channel": "cache:cm1", "data": {"n": 1}}),
            Api("publish", {"channel": "cache:cm1", "data": {"n": 2}}),
            *ws(sub("cache:cm1", recover=True, offset=0, epoch="$EPOCH"), user="cm1"),
        ],
    ),
    Scenario("cache-mode-empty", [*ws(sub("cache:cm2"), user="cm2")]),
    # presence, join/leave
    Scenario(
        "join-leave",
        [
            *ws(sub("chat:jl1", join_leave=True), user="jl1"),
            Open("b"),
            connect("jl2", "b"),
            sub("chat:jl1", "b"),
            Pushes(1),
            Cmd({"presence_stats": {"channel": "chat:jl1"}}),
            Cmd({"unsubscribe": {"channel": "chat:jl1"}}, "b"),
            Pushes(1),
        ],
    ),
    # delta
    Scenario(
        "delta",
        [
            *ws(sub("delta:d1", delta="fossil"), user="d1"),
            Api(
                "publish",
                {"channel": "delta:d1", "data": {"text": "hello world, this is a test"}, "delta": True},
            ),
            Pushes(1),
            Api(
                "publish",
                {"channel": "delta:d1", "data": {"text": "hello world, this is a best"}, "delta": True},
            ),
            Pushes(1),
        ],
    ),
    Scenario("delta-not-allowed", [*ws(sub("chat:d2", delta="fossil"), alive(), user="d2")]),
    Scenario("delta-unknown-type", [*ws(sub("delta:d3", delta="xdelta"), alive(), user="d3")]),
    # tags filter
    Scenario(
        "tags-filter",
        [
            *ws(sub("tags:tf1", tf={"cmp": "eq", "key": "t", "val": "1"}), user="tf1"),
            Api("publish", {"channel": "tags:tf1", "data": {"n": 1}, "tags": {"t": "2"}}),
            Api("publish", {"channel": "tags:tf1", "data": {"n": 2}, "tags": {"t": "1"}}),
            Pushes(1),
        ],
    ),
    Scenario(
        "tags-filter-not-allowed",
        [*ws(sub("plain:tf2", tf={"cmp": "eq", "key": "t", "val": "1"}), alive(), user="tf2")],
    ),
    Scenario(
        "tags-filter-invalid",
        [*ws(sub("tags:tf3", tf={"cmp": "nosuch", "key": "t"}), alive(), user="tf3")],
    ),
]


SCENARIOS += [
    # more frames and commands
    Scenario(
        "json-id-string",
        [*ws(Send('{"id": "7", "rpc": {"method": "x"}}'), Closed(), user="f1")],
        protocols=("json",),
    ),
    Scenario(
        "json-negative-id",
        [*ws(Send('{"id": -1, "rpc": {"method": "x"}}'), Closed(), user="f2")],
        protocols=("json",),
    ),
    Scenario("json-empty-frame", [*ws(Send(""), alive(), user="f3")], protocols=("json",)),
    Scenario("json-blank-lines", [*ws(Send("\n\n"), alive(), user="f4")], protocols=("json",)),
    Scenario("json-null", [*ws(Send("null"), Closed(), user="f5")], protocols=("json",)),
    Scenario(
        "two-methods-in-one-command",
        [*ws(Cmd({"rpc": {"method": "x"}, "presence": {"channel": "chat:f6"}}), alive(), user="f6")],
    ),
    Scenario(
        "protobuf-truncated", [*ws(Send(b"\x10\x08\x01"), Closed(), user="f7")], protocols=("protobuf",)
    ),
    Scenario("protobuf-empty-frame", [*ws(Send(b""), alive(), user="f8")], protocols=("protobuf",)),
    Scenario(
        "connect-unknown-protocol-field",
        [Open(), Cmd({"connect": {"token": token("f9"), "subs": {"chat:f9": {}}}}), alive()],
    ),
    Scenario(
        "duplicate-command-id",
        [*ws(Cmd({"rpc": {"method": "x"}}, id=5), Cmd({"rpc": {"method": "y"}}, id=5), user="f10")],
    ),
    # presence details, join/leave with info
    Scenario(
        "presence-info",
        [
            Open(),
            Cmd({"connect": {"token": token("pi1", info={"name": "Ann"})}}),
            sub("chat:pi"),
            Open("b"),
            Cmd({"connect": {"token": token("pi2", info={"name": "Bob"})}}, "b"),
            sub("chat:pi", "b"),
            Pushes(1),
            Cmd({"presence": {"channel": "chat:pi"}}),
            Api("presence", {"channel": "chat:pi"}),
            Api("presence_stats", {"channel": "chat:pi"}),
        ],
    ),
    Scenario(
        "leave-on-disconnect",
        [
            *ws(sub("chat:ld"), user="ld1"),
            Open("b"),
            connect("ld2", "b"),
            sub("chat:ld", "b"),
            Pushes(1),
            Api("disconnect", {"user": "ld2"}),
            Closed("b"),
            Pushes(1),
        ],
    ),
    Scenario(
        "api-subscribe-override",
        [
            *ws(user="ao"),
            Api(
                "subscribe",
                {
                    "user": "ao",
                    "channel": "stream:ao",
                    "override": {"presence": {"value": True}, "join_leave": {"value": True}},
                },
            ),
            Pushes(1),
            Api("presence_stats", {"channel": "stream:ao"}),
        ],
    ),
    Scenario(
        "subscribe-push-then-unsubscribe-push",
        [
            *ws(Cmd({"subscribe": {"channel": "chat:su"}}), user="su"),
            Api("unsubscribe", {"user": "su", "channel": "chat:su"}),
            Pushes(1),
            alive(),
        ],
    ),
    # tags filters
    Scenario(
        "tags-filter-and-or-in",
        [
            *ws(
                sub(
                    "tags:tf4",
                    tf={
                        "op": "or",
                        "nodes": [
                            {
                                "op": "and",
                                "nodes": [
                                    {"cmp": "eq", "key": "a", "val": "1"},
                                    {"cmp": "neq", "key": "b", "val": "2"},
                                ],
                            },
                            {"cmp": "in", "key": "c", "vals": ["x", "y"]},
                        ],
                    },
                ),
                user="tf4",
            ),
            Api("publish", {"channel": "tags:tf4", "data": {"n": 1}, "tags": {"a": "1", "b": "2"}}),
            Api("publish", {"channel": "tags:tf4", "data": {"n": 2}, "tags": {"a": "1", "b": "3"}}),
            Api("publish", {"channel": "tags:tf4", "data": {"n": 3}, "tags": {"c": "z"}}),
            Api("publish", {"channel": "tags:tf4", "data": {"n": 4}, "tags": {"c": "y"}}),
            Pushes(2),
        ],
    ),
    Scenario(
        "tags-filter-exists-and-not",
        [
            *ws(sub("tags:tf5", tf={"op": "not", "nodes": [{"cmp": "ex", "key": "hidden"}]}), user="tf5"),
            Api("publish", {"channel": "tags:tf5", "data": {"n": 1}, "tags": {"hidden": "1"}}),
            Api("publish", {"channel": "tags:tf5", "data": {"n": 2}}),
            Pushes(1),
        ],
    ),
    Scenario(
        "tags-filter-with-delta",
        [
            *ws(
                sub("delta:tf6", delta="fossil", tf={"cmp": "eq", "key": "t", "val": "1"}),
                alive(),
                user="tf6",
            )
        ],
    ),
    # delta with recovery
    Scenario(
        "delta-recover",
        [
            Api(
                "publish",
                {"channel": "delta:d4", "data": {"text": "one two three four five six"}, "delta": True},
            ),
            Api(
                "publish",
                {"channel": "delta:d4", "data": {"text": "one two three four five sixty"}, "delta": True},
            ),
            *ws(sub("delta:d4", delta="fossil", recover=True, offset=0, epoch="$EPOCH"), user="d4"),
        ],
    ),
]


def pb_command(**fields: object) -> bytes:
    """A length-delimited Protobuf command built directly, for payloads JSON cannot express."""
    command = pb.Command(**fields)  # type: ignore[arg-type]
    body = command.SerializeToString()
    return bytes([len(body)]) + body


SCENARIOS += [
    Scenario(
        "protobuf-binary-publish",
        [
            *ws(sub("plain:bin1"), user="bin1"),
            Send(pb_command(id=50, publish=pb.PublishRequest(channel="plain:bin1", data=b"\x00\xffbin"))),
            Pushes(1),
            alive(),
        ],
        protocols=("protobuf",),
    ),
    Scenario(
        "cross-protocol",
        [
            *ws(sub("plain:x1"), user="x1"),
            Open("b", protocol="protobuf"),
            connect("x2", "b"),
            sub("plain:x1", "b"),
            Cmd({"publish": {"channel": "plain:x1", "data": {"from": "json"}}}),
            Pushes(1),
            Pushes(1, "b"),
            Cmd({"publish": {"channel": "plain:x1", "data": {"from": "protobuf"}}}, "b"),
            Pushes(1),
            Pushes(1, "b"),
        ],
        protocols=("json",),
    ),
    Scenario(
        "cross-protocol-delta",
        [
            *ws(sub("delta:x3", delta="fossil"), user="x3"),
            Open("b", protocol="protobuf"),
            connect("x4", "b"),
            sub("delta:x3", "b", delta="fossil"),
            Api(
                "publish",
                {"channel": "delta:x3", "data": {"text": "some long text to compress"}, "delta": True},
            ),
            Api(
                "publish",
                {"channel": "delta:x3", "data": {"text": "some long text to compress!"}, "delta": True},
            ),
            Pushes(2),
            Pushes(2, "b"),
        ],
        protocols=("json",),
    ),
]

SCENARIOS += [
    Scenario(
        "publish-number-forms-delivered",
        [
            *ws(sub("plain:nf3"), user="nf3"),
            Open("b"),
            connect("nf4", "b"),
            Send(
                '{"id": 40, "publish": {"channel": "plain:nf3", "data": {"a": 1e5, "b": 1.50, '
                '"c": 123456789012345678901234567890}}}',
                "b",
            ),
            Pushes(1),
        ],
        protocols=("json",),
    ),
]

SCENARIOS += [
    # token claims
    Scenario(
        "sub-token-expiring",
        [*ws(sub("locked:tc1", token=sub_token("tc1", "locked:tc1", exp=4102444800)), user="tc1")],
    ),
    Scenario(
        "sub-token-expire-at",
        [*ws(sub("locked:tc2", token=sub_token("tc2", "locked:tc2", expire_at=4102444800)), user="tc2")],
    ),
    Scenario(
        "sub-token-expire-at-past",
        [*ws(sub("locked:tc3", token=sub_token("tc3", "locked:tc3", expire_at=1000)), alive(), user="tc3")],
    ),
    Scenario(
        "sub-token-b64info",
        [*ws(sub("locked:tc4", token=sub_token("tc4", "locked:tc4", b64info="eyJhIjoxfQ==")), user="tc4")],
    ),
    Scenario(
        "sub-token-override",
        [
            *ws(
                sub(
                    "locked:tc5", token=sub_token("tc5", "locked:tc5", override={"presence": {"value": True}})
                ),
                user="tc5",
            ),
            Cmd({"presence_stats": {"channel": "locked:tc5"}}),
        ],
    ),
    Scenario(
        "sub-token-client-claim",
        [
            *ws(
                sub("locked:tc6", token=sub_token("tc6", "locked:tc6", client="someone-else")),
                alive(),
                user="tc6",
            )
        ],
    ),
    Scenario(
        "conn-token-expire-at", [Open(), Cmd({"connect": {"token": token("tc7", expire_at=4102444800)}})]
    ),
    Scenario(
        "conn-token-expire-at-past", [Open(), Cmd({"connect": {"token": token("tc8", expire_at=1000)}})]
    ),
    Scenario(
        "conn-token-meta-b64info",
        [
            Open(),
            Cmd({"connect": {"token": token("tc9", meta={"m": 1}, b64info="eyJhIjoxfQ==")}}),
            sub("chat:tc9"),
            Cmd({"presence": {"channel": "chat:tc9"}}),
        ],
    ),
    Scenario("conn-token-nbf-future", [Open(), Cmd({"connect": {"token": token("tc10", nbf=4102444800)}})]),
    Scenario(
        "conn-token-iat-future", [Open(), Cmd({"connect": {"token": token("tc11", iat=4102444800)}}), alive()]
    ),
    Scenario(
        "conn-token-aud-unconfigured",
        [Open(), Cmd({"connect": {"token": token("tc12", aud="someone")}}), alive()],
    ),
    Scenario(
        "conn-token-sub-not-string",
        [Open(), Cmd({"connect": {"token": token("tc13", channels="not-a-list")}}), alive()],
    ),
    Scenario(
        "conn-token-subs-override",
        [
            Open(),
            Cmd(
                {
                    "connect": {
                        "token": token(
                            "tc14", subs={"stream:tc14": {"override": {"presence": {"value": True}}}}
                        )
                    }
                }
            ),
            Cmd({"presence_stats": {"channel": "stream:tc14"}}),
        ],
    ),
]


@pytest.mark.parametrize(("scenario", "protocol"), params(SCENARIOS))
async def test_client(pairs: Callable[[str], Pair], scenario: Scenario, protocol: str) -> None:
    pair = pairs(protocol)
    await check(pair.centrifugo, pair.rotary, scenario, protocol, f"{scenario.name}-{protocol}")
