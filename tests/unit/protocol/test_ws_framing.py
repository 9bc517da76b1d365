"""Hand-built WebSocket frames, checked by the websockets library's own frame parser."""

from __future__ import annotations

import pytest
from websockets.frames import Close, Frame, Opcode
from websockets.streams import StreamReader

from rotary.protocol.framing import ws_close_frame, ws_frame, ws_frame_payload, ws_ping_frame, ws_pong_frame


def _parse(data: bytes) -> Frame:
    """One client-side parse of ``data``, which must hold exactly one unmasked frame."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    with pytest.raises(StopIteration) as stop:
        next(parser)
    assert reader.at_eof()
    frame: Frame = stop.value.value
    return frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
@pytest.mark.parametrize("binary", [False, True])
def test_data_frames_of_every_length_class(size: int, binary: bool) -> None:
    payload = b"a" * size
    frame = _parse(ws_frame(payload, binary))
    assert frame.opcode is (Opcode.BINARY if binary else Opcode.TEXT)
    assert frame.fin and frame.data == payload
    assert not (frame.rsv1 or frame.rsv2 or frame.rsv3)


@pytest.mark.parametrize("size, header", [(125, 2), (126, 4), (65535, 4), (65536, 10)])
def test_header_uses_the_shortest_length_form(size: int, header: int) -> None:
    assert len(ws_frame(b"x" * size, binary=True)) == size + header


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
@pytest.mark.parametrize("binary", [False, True])
def test_data_frames_are_the_bytes_websockets_serializes_for_a_server(size: int, binary: bool) -> None:
    """The ASGI mount writes these in place of uvicorn's ``send`` (transports/mounts/asgi_uvicorn.py),
    which has websockets serialize an unmasked frame with no extensions: the same bytes."""
    payload = bytes(range(256)) * (size // 256) + b"b" * (size % 256)
    theirs = Frame(Opcode.BINARY if binary else Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert ws_frame(payload, binary) == theirs


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_payload_of_a_frame(size: int) -> None:
    payload = b"p" * size
    assert ws_frame_payload(ws_frame(payload, binary=False)) == payload


def test_close_frame_carries_code_and_reason() -> None:
    frame = _parse(ws_close_frame(3501, "bad request"))
    assert frame.opcode is Opcode.CLOSE
    assert Close.parse(frame.data) == Close(3501, "bad request")


@pytest.mark.parametrize("reason", ["x" * 200, "é" * 100, "€" * 50, "a" + "😀" * 40])
def test_close_reason_is_cut_on_a_utf8_boundary(reason: str) -> None:
    close = Close.parse(_parse(ws_close_frame(4000, reason)).data)
    encoded = close.reason.encode()
    assert close.code == 4000
    assert len(encoded) <= 123 and reason.startswith(close.reason)
    assert len(encoded) > 123 - 4  # at most one partial character was dropped


def test_ping_frame_is_empty() -> None:
    frame = _parse(ws_ping_frame())
    assert frame.opcode is Opcode.PING and frame.data == b""


def test_pong_echoes_payload() -> None:
    frame = _parse(ws_pong_frame(b"hello"))
    assert frame.opcode is Opcode.PONG and frame.data == b"hello"


def test_pong_payload_over_125_bytes_is_refused() -> None:
    with pytest.raises(ValueError):
        ws_pong_frame(b"x" * 126)
