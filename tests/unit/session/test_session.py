"""Table-driven tests of the session state machine: which command may run in which status, and
what the timers do."""

from __future__ import annotations

import random

import pytest

from rotary.protocol import codes, pb
from rotary.protocol.codec import ProtocolError, ProtocolType, codec_for
from rotary.session.session import REQUEST_FIELDS, Session, SessionLimits, Status

JSON = codec_for(ProtocolType.JSON)


def session(**limits: float) -> Session:
    return Session(JSON, SessionLimits(**limits), now=0.0)  # type: ignore[arg-type]


def command(method: str | None, id: int = 1) -> pb.Command:
    cmd = pb.Command(id=id)
    if method is not None:
        getattr(cmd, method).SetInParent()
    return cmd


# (status, method, id) -> admitted method or "violation"
GATE = [
    (Status.CONNECTING, "connect", 1, "connect"),
    (Status.CONNECTING, "subscribe", 1, "violation"),
    (Status.CONNECTING, "send", 0, "violation"),
    (Status.CONNECTING, None, 0, "violation"),
    (Status.CONNECTED, "connect", 2, "violation"),
    (Status.CONNECTED, "ping", 2, "violation"),
    (Status.CONNECTED, "send", 0, "send"),
    (Status.CONNECTED, None, 5, "violation"),
    *[(Status.CONNECTED, m, 3, m) for m in REQUEST_FIELDS if m not in ("connect", "ping")],
    *[(Status.CONNECTED, m, 0, "violation") for m in REQUEST_FIELDS if m not in ("send",)],
]


@pytest.mark.parametrize(("status", "method", "cmd_id", "expected"), GATE)
def test_command_gate(status: Status, method: str | None, cmd_id: int, expected: str) -> None:
    s = session()
    if status is Status.CONNECTED:
        s.connected(now=0.0, expire_at=0, wall_now=0.0)
    cmd = command(method, cmd_id)
    if expected == "violation":
        with pytest.raises(ProtocolError):
            s.admit(cmd)
    else:
        assert s.admit(cmd) == expected


def test_first_request_field_wins() -> None:
    s = session()
    s.connected(0.0, 0, 0.0)
    cmd = pb.Command(id=1, subscribe=pb.SubscribeRequest(channel="a"), publish=pb.PublishRequest(channel="a"))
    assert s.admit(cmd) == "subscribe"


def test_stale_connection_closes_with_3502() -> None:
    s = session(stale_close_delay=10)
    assert s.next_deadline() == 10
    assert s.timer_fired(9.9, 0) is None
    assert s.timer_fired(10, 0) == codes.DISCONNECT_STALE


def test_connect_cancels_stale_and_schedules_first_ping_in_second_half() -> None:
    s = session(stale_close_delay=10, ping_interval=20, pong_timeout=5)
    s.connected(now=0.0, expire_at=0, wall_now=0.0)
    deadline = s.next_deadline()
    assert deadline is not None and 10 <= deadline <= 20


def test_ping_then_pong_then_next_ping() -> None:
    s = session(ping_interval=20, pong_timeout=5)
    s.connected(0.0, 0, 0.0)
    first = s.next_deadline()
    assert first is not None
    assert s.timer_fired(first, 0) is None
    assert s.data_to_send() == b"{}"
    assert s.next_deadline() == first + 5
    assert s.admit(pb.Command()) is None
    assert s.next_deadline() == first + 20


def test_missing_pong_closes_with_3012() -> None:
    s = session(ping_interval=20, pong_timeout=5)
    s.connected(0.0, 0, 0.0)
    first = s.next_deadline()
    assert first is not None
    s.timer_fired(first, 0)
    assert s.timer_fired(first + 5, 0) == codes.DISCONNECT_NO_PONG


@pytest.mark.parametrize("pongs_before", [0, 1])
def test_pong_without_outstanding_ping_is_a_violation(pongs_before: int) -> None:
    s = session(ping_interval=20, pong_timeout=5)
    s.connected(0.0, 0, 0.0)
    if pongs_before:
        first = s.next_deadline()
        assert first is not None
        s.timer_fired(first, 0)
        s.admit(pb.Command())
    with pytest.raises(ProtocolError):
        s.admit(pb.Command())


def test_unidirectional_ping_is_an_empty_push_without_pong_deadline() -> None:
    s = Session(JSON, SessionLimits(ping_interval=20, pong_timeout=5, unidirectional=True), now=0.0)
    s.connected(0.0, 0, 0.0)
    first = s.next_deadline()
    assert first is not None
    s.timer_fired(first, 0)
    assert s.data_to_send() == b"{}"
    assert s.next_deadline() == first + 20


def test_expired_connection_closes_after_grace_delay_unless_refreshed() -> None:
    s = session(ping_interval=0, expired_close_delay=25)
    s.connected(now=0.0, expire_at=1000 + 60, wall_now=1000)
    assert s.next_deadline() == 85
    assert s.timer_fired(85, wall_now=1085) == codes.DISCONNECT_EXPIRED
    s.set_expiry(1085 + 60, now=85, wall_now=1085)
    assert s.timer_fired(85, wall_now=1085) is None


def test_replies_are_batched_into_one_frame() -> None:
    s = session()
    s.send_result(1, "connect", pb.ConnectResult(client="c"))
    s.send_error(2, 103, "permission denied")
    assert s.data_to_send() == (
        b'{"id":1,"connect":{"client":"c"}}\n{"id":2,"error":{"code":103,"message":"permission denied"}}'
    )
    assert s.data_to_send() is None


def test_closed_session_ignores_input_and_has_no_deadline() -> None:
    s = session()
    s.close()
    assert s.receive(b'{"id":1,"connect":{}}') == []
    assert s.next_deadline() is None


def test_subscription_expiry_is_checked_on_the_connection_tick_past_the_grace_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As centrifuge's checkSubscriptionExpiration: on the connection's periodic presence tick (the
    first one spread, here at its latest: 27 s after connect), once the Unix second is past expiry
    plus the whole grace delay; never at expiry plus the delay itself."""
    from rotary.session.channels import ChannelState

    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    s = session(ping_interval=0, expired_sub_close_delay=5, presence_update_interval=27)
    s.connected(0.0, 0, 1000.0)
    s.channels["a"] = ChannelState("a", expire_at=1021)
    s.set_subscription_expiry("a", 1021, now=0.0, wall_now=1000)  # past at 1027: the first tick
    s.channels["b"] = ChannelState("b", expire_at=1022)
    s.set_subscription_expiry("b", 1022, now=0.0, wall_now=1000)  # 1027 is not past 1027: next tick
    assert s.next_deadline() == 27
    assert s.timer_fired(26, wall_now=1026) is None
    assert s.expired_channels == []
    assert s.timer_fired(27, wall_now=1027) is None
    assert s.expired_channels == ["a"]
    assert s.next_deadline() == 54
    assert s.timer_fired(54, wall_now=1054) is None
    assert s.expired_channels == ["a", "b"]


def test_refreshed_subscription_is_not_reported() -> None:
    from rotary.session.channels import ChannelState

    s = session(ping_interval=0, expired_sub_close_delay=5)
    s.connected(0.0, 0, 0.0)
    s.channels["a"] = ChannelState("a", expire_at=2000)
    s.set_subscription_expiry("a", 1010, now=0.0, wall_now=1000)
    assert s.timer_fired(15, wall_now=1015) is None
    assert s.expired_channels == []


def test_failed_connect_ignores_frames_then_drops_without_goodbye() -> None:
    s = session(stale_close_delay=10)
    s.connect_failed(now=1.0)
    assert s.receive(b'{"id":2,"connect":{}}') == []
    assert s.next_deadline() == 6.0
    assert s.timer_fired(5.9, 0.0) is None and not s.dropped
    assert s.timer_fired(6.0, 0.0) == codes.DISCONNECT_CONNECTION_CLOSED
    assert s.dropped
