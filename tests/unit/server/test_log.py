"""The ``log`` section: JSON lines with zerolog's keys in a file or on a non-terminal stderr,
readable lines on a terminal's stdout, levels as Centrifugo names them.
See https://centrifugal.dev/docs/server/configuration#log.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from rotary.server.config.schema import LogConfig
from rotary.server.log import setup_logging

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    logger = logging.getLogger("rotary")
    handlers, level = list(logger.handlers), logger.level
    yield
    for handler in logger.handlers:
        if handler not in handlers:
            handler.close()
    logger.handlers[:] = handlers
    logger.setLevel(level)


def lines(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_text().splitlines()]


def test_file_gets_json_lines_with_centrifugo_keys(tmp_path: Path) -> None:
    path = tmp_path / "rotary.log"
    path.write_text('{"level":"info","message":"kept"}\n')  # appended to, as Centrifugo does
    setup_logging(LogConfig(level="info", file=str(path)))
    log = logging.getLogger("rotary.client")
    log.debug("not written at info")
    log.info("closing client connection", extra={"client": "c1", "user": "u1", "reason": "bye"})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed", extra={"channel": "news"})

    first, closing, failed = lines(path)
    assert first["message"] == "kept"
    assert list(closing) == ["level", "client", "user", "reason", "time", "message"]
    assert closing["level"] == "info" and closing["client"] == "c1" and closing["user"] == "u1"
    assert TIME.match(str(closing["time"]))
    assert failed["level"] == "error" and failed["channel"] == "news"
    assert "ValueError: boom" in str(failed["error"])


@pytest.mark.parametrize(
    ("level", "written"),
    [("trace", 5), ("debug", 4), ("info", 3), ("warn", 2), ("error", 1), ("none", 0)],
)
def test_levels(tmp_path: Path, level: str, written: int) -> None:
    path = tmp_path / "rotary.log"
    setup_logging(LogConfig(level=level, file=str(path)))
    log = logging.getLogger("rotary")
    for method in (5, logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR):
        log.log(method, "x")
    levels = [entry["level"] for entry in lines(path)] if path.exists() else []
    assert levels == ["trace", "debug", "info", "warn", "error"][5 - written :]


def test_not_a_terminal_gets_json_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogConfig(level="info"))
    logging.getLogger("rotary.server").warning("serving on %s", "x", extra={"transport": "websocket"})
    captured = capsys.readouterr()
    assert captured.out == ""
    entry = orjson.loads(captured.err)
    assert (
        entry["level"] == "warn" and entry["message"] == "serving on x" and entry["transport"] == "websocket"
    )


def test_terminal_gets_readable_lines_on_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    leader, follower = os.openpty()
    with open(follower, "w", buffering=1) as terminal:
        monkeypatch.setattr("sys.stdout", terminal)
        setup_logging(LogConfig(level="info"))
        logging.getLogger("rotary.server").info("serving on %s", "x", extra={"client": "c1"})
        text = os.read(leader, 4096).decode()
    os.close(leader)
    assert "[INFO] rotary.server: serving on x client=c1" in text
    assert not text.startswith("{")
