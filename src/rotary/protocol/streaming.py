"""Framing of the bidirectional emulation transports (HTTP streaming and SSE), and the decoding of the
emulation endpoint's requests.

HTTP streaming sends JSON replies one per line and Protobuf replies length-prefixed, as the codecs
already batch them; SSE sends each batch as one event whose ``data:`` lines hold the JSON replies.
On HTTP/1.1 each batch travels in one chunk of a chunked response, so a frame built once serves every
subscriber of the same framing. The client-to-server half of the connection arrives on the emulation
endpoint as ``{node, session, data}``; ``data`` is a JSON string of commands for JSON clients and the
raw commands for Protobuf ones. See https://centrifugal.dev/docs/transports/http_stream and
https://centrifugal.dev/docs/transports/sse.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from google.protobuf.message import DecodeError

from rotary.protocol import pb
from rotary.protocol.codec import ProtocolError, ProtocolType

SSE_PREAMBLE = b"\r\n"
"""Written first on an SSE stream, as Centrifugo does, so that the browser sees the stream open."""


def http_chunk(body: bytes) -> bytes:
    """One chunk of a chunked HTTP/1.1 body (RFC 9112 section 7.1); ``body`` must not be empty."""
    return b"%x\r\n%b\r\n" % (len(body), body)


def http_stream_body(payload: bytes, protocol: ProtocolType) -> bytes:
    """An encoded batch as the HTTP-streaming body carries it: JSON lines end with a newline."""
    return payload + b"\n" if protocol is ProtocolType.JSON else payload


def sse_event(payload: bytes) -> bytes:
    """A JSON batch as one server-sent event; every reply of the batch is one ``data:`` line.

    The EventSource joins the lines of one event with newlines, which is how JSON batches are
    delimited, so the client decodes the event as it would a WebSocket frame.
    """
    return b"data: " + payload.replace(b"\n", b"\ndata: ") + b"\n\n"


@dataclass(frozen=True, slots=True)
class EmulationRequest:
    """A client-to-server message for the session ``session`` living on the node ``node``."""

    node: str
    session: str
    data: bytes
    """As sent: the JSON text of the ``data`` value for JSON requests, the raw bytes for Protobuf."""


def decode_emulation_request(body: bytes, protobuf: bool) -> EmulationRequest:
    """Parses the body of ``POST /emulation``; raises ProtocolError when it is not one."""
    if protobuf:
        message = pb.EmulationRequest()
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise ProtocolError(f"invalid Protobuf emulation request: {exc}") from exc
        return EmulationRequest(message.node, message.session, message.data)
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"invalid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError("emulation request is not a JSON object")
    node, session = obj.get("node", ""), obj.get("session", "")
    if not isinstance(node, str) or not isinstance(session, str):
        raise ProtocolError("node and session must be strings")
    data = obj.get("data")
    return EmulationRequest(node, session, b"" if data is None else orjson.dumps(data))


def emulation_frame(data: bytes, protocol: ProtocolType) -> bytes:
    """The inbound frame an emulation request carries for a client of ``protocol``.

    A JSON client's commands come as a JSON string (newline-delimited commands inside it); anything
    else is a ProtocolError, as the owner of the session cannot read it.
    """
    if protocol is ProtocolType.PROTOBUF:
        return data
    try:
        text = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"invalid JSON: {exc}") from exc
    if not isinstance(text, str):
        raise ProtocolError("emulation data of a JSON client must be a JSON string")
    return text.encode()
