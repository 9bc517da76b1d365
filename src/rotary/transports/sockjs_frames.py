"""SockJS frames and fixed bodies, pure: what the SockJS protocol puts on the wire around a message.

A SockJS frame is ``o`` (open), ``h`` (heartbeat), ``a[...]`` (an array of messages, each a JSON
string) or ``c[code,"reason"]`` (close). Every sub-transport carries the same frames, wrapped its own
way: a WebSocket text frame, a line of an xhr response, an SSE ``data:`` event. rotary's message is
the JSON protocol's encoded batch (newline-delimited replies), exactly what a WebSocket frame
carries, so one SockJS message per batch.
See https://github.com/sockjs/sockjs-protocol (sockjs-protocol-0.3.3) and
https://centrifugal.dev/docs/4/transports/sockjs (Centrifugo v4, which still served it).
"""

from __future__ import annotations

from typing import Final

import orjson

OPEN: Final = b"o"
HEARTBEAT: Final = b"h"

ANOTHER_CONNECTION: Final = (2010, "Another connection still open")
"""The close frame a second receiving request of one session gets (the spec's code)."""

XHR_STREAMING_PRELUDE: Final = b"h" * 2048 + b"\n"
"""2 KiB that make old browsers start handing the streamed body to the page."""
EVENTSOURCE_PRELUDE: Final = b"\r\n"

WELCOME: Final = b"Welcome to SockJS!\n"


def message_element(payload: bytes) -> bytes:
    """One message as an element of an ``a[...]`` frame: the encoded batch as a JSON string."""
    return orjson.dumps(payload.decode("utf-8"))


def messages_frame(elements: list[bytes]) -> bytes:
    return b"a[" + b",".join(elements) + b"]"


def close_frame(code: int, reason: str) -> bytes:
    return b"c" + orjson.dumps([code, reason])


class BadMessages(ValueError):
    """A client frame that is not a JSON string or array of strings."""


def client_messages(data: bytes | str) -> list[str]:
    """The messages of a client frame (a WebSocket message or an xhr_send body)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadMessages(f"broken JSON encoding: {exc}") from None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise BadMessages("a JSON string or an array of strings is expected")


def info_body(websocket: bool, entropy: int) -> bytes:
    """The answer of ``GET <prefix>/info``: what the client may use."""
    return orjson.dumps(
        {"websocket": websocket, "origins": ["*:*"], "cookie_needed": False, "entropy": entropy}
    )


def iframe_page(sockjs_url: str) -> bytes:
    """The page iframe-based transports load from the server's origin; it runs the client library."""
    url = orjson.dumps(sockjs_url).decode()
    return f"""<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <script>
    document.domain = document.domain;
    _sockjs_onload = function(){{SockJS.bootstrap_iframe();}};
  </script>
  <script src={url}></script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>""".encode()
