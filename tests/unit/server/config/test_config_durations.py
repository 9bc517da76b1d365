import pytest

from rotary.server.config.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("25s", 25.0), ("500ms", 0.5), ("720h", 2592000.0), ("1m30s", 90.0), ("0", 0.0), ("-2s", -2.0)],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["10", "", "s", "1x", "1s2", "abc"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(25.0, "25s"), (0.5, "500ms"), (2592000.0, "720h0m0s"), (90.0, "1m30s"), (0.0, "0s"), (1e-4, "100µs")],
)
def test_format_like_go(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)
