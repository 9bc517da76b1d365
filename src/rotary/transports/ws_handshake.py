"""The 101 answer to a well-formed WebSocket upgrade, built without aiohttp's WebSocketResponse.

aiohttp's way to answer an upgrade (a WebSocketResponse, its writer, StreamResponse.prepare and the
HTTP writer) was about a tenth of the server's CPU for a connect + subscribe (issue 15), for an
answer of four or five fixed headers. :func:`switching_protocols` builds the same answer directly:
the same checks as aiohttp's handshake, the same headers in the same order (Centrifugo's
permessage-deflate answer as :func:`rotary.transports.websocket.negotiate_deflate` gives it), and
the app's ``on_response_prepare`` signals still see the response (they drop ``Server``). Anything
it is not sure of, it leaves to aiohttp: a request aiohttp would refuse, or one whose subprotocols
all miss (aiohttp logs that), returns None, and aiohttp's own handshake answers it as before.
See https://centrifugal.dev/docs/transports/websocket
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import hdrs, web
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.http_websocket import WS_KEY
from multidict import CIMultiDict, CIMultiDictProxy

from rotary.protocol import deflate

_VERSIONS = ("13", "8", "7")
"""The Sec-WebSocket-Version values aiohttp accepts."""


@dataclass(slots=True)
class Answer:
    """The headers of the 101 to a well-formed upgrade, in aiohttp's order, and what it negotiated."""

    headers: dict[str, str]
    subprotocol: str | None
    deflate: bool


Headers = CIMultiDict[str] | CIMultiDictProxy[str]


def switching_protocols(
    request: web.BaseRequest, protocols: tuple[str, ...], compression: bool
) -> Answer | None:
    """The answer aiohttp's handshake would give ``request``, with aiohttp's ``Server`` header last
    for the app's response signals to see, or None for aiohttp to answer it."""
    answer = answer_of(request.headers, request._message.upgrade, protocols, compression)
    if answer is not None:
        answer.headers[hdrs.SERVER] = SERVER_SOFTWARE
    return answer


def answer_of(
    headers: Headers, upgrade: bool, protocols: tuple[str, ...], compression: bool
) -> Answer | None:
    """The same answer, without ``Server`` (which Centrifugo does not send), from a request's headers
    and its parser's upgrade flag (``Connection`` and ``Upgrade`` asked for one), for requests read
    outside aiohttp too; None for aiohttp to answer."""
    return answer_to(
        headers.get(hdrs.UPGRADE, ""),
        upgrade,
        headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL),
        headers.get(hdrs.SEC_WEBSOCKET_VERSION, ""),
        headers.get(hdrs.SEC_WEBSOCKET_KEY),
        headers.getall(hdrs.SEC_WEBSOCKET_EXTENSIONS, ()),
        protocols,
        compression,
    )


def answer_to(
    upgrade_header: str,
    upgrade: bool,
    offered: str | None,
    version: str,
    key: str | None,
    extensions: Iterable[str],
    protocols: tuple[str, ...],
    compression: bool,
) -> Answer | None:
    """:func:`answer_of` from the header values it reads (the first of each name, every
    ``Sec-WebSocket-Extensions``), for a caller that holds them in another shape than a multidict
    (the front door)."""
    if upgrade_header.lower().strip() != "websocket" or not upgrade:
        return None
    subprotocol = None
    if offered is not None:
        for name in offered.split(","):
            if name.strip() in protocols:
                subprotocol = name.strip()
                break
        else:
            return None
    if version not in _VERSIONS:
        return None
    try:  # base64.b64decode and b64encode without their Python layer: the same binascii calls
        if not key or len(binascii.a2b_base64(key)) != 16:
            return None
    except ValueError:  # binascii.Error, or a key that is not ASCII
        return None
    accept = binascii.b2a_base64(hashlib.sha1(key.encode() + WS_KEY).digest(), newline=False)
    answer: dict[str, str] = {
        hdrs.UPGRADE: "websocket",
        hdrs.CONNECTION: "upgrade",
        hdrs.SEC_WEBSOCKET_ACCEPT: accept.decode(),
    }
    if subprotocol:
        answer[hdrs.SEC_WEBSOCKET_PROTOCOL] = subprotocol
    deflated = compression and deflate.offered(extensions)
    if deflated:
        answer[hdrs.SEC_WEBSOCKET_EXTENSIONS] = deflate.RESPONSE
    answer[hdrs.DATE] = rfc822_formatted_time()
    return Answer(answer, subprotocol, deflated)


def head(request: web.BaseRequest, response: web.StreamResponse) -> bytes:
    """The status line and headers of ``response``, as aiohttp would write them."""
    version = request.version
    return head_of(f"HTTP/{version.major}.{version.minor}", response.headers.items())


def head_of(version: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """The 101's status line for ``version`` (``HTTP/1.1``) and ``headers``, as aiohttp writes them.

    Joined in a loop of plain concatenations: a generator and f-strings (``format`` of aiohttp's
    ``istr`` names) cost more than the few headers of a 101."""
    head = version + " 101 Switching Protocols\r\n"
    for name, value in headers:
        head += name + ": " + value + "\r\n"
    return (head + "\r\n").encode()


class HandedOver(web.StreamResponse):
    """What the handler returns once the socket is rotary's: 101 for the metrics of HTTP handlers,
    and nothing left for aiohttp to write."""

    def __init__(self, headers: dict[str, str] | None = None) -> None:
        super().__init__(status=101, headers=headers)

    async def prepare(self, request: web.BaseRequest) -> None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


async def answer(request: web.BaseRequest, response: HandedOver) -> None:
    """Writes the 101 once the app's ``on_response_prepare`` signals have seen it, as aiohttp does.

    Raises ConnectionResetError when the socket is gone, as aiohttp's writer does."""
    await request._prepare_hook(response)
    sock = request.transport
    if sock is None or sock.is_closing():
        raise ConnectionResetError("Connection lost")
    sock.write(head(request, response))
