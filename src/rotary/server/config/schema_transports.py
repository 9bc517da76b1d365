"""Schema of the HTTP server, the client transports and the server APIs.

See https://centrifugal.dev/docs/transports/overview and
https://centrifugal.dev/docs/server/configuration#http-server-options
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rotary.server.config.fields import dur, opt, section


def port_range(value: Any) -> str | None:
    return None if 0 <= value <= 65535 else "must be a port number between 0 and 65535"


def non_negative(value: Any) -> str | None:
    return None if value >= 0 else "must not be negative"


def handler_prefix(value: Any) -> str | None:
    return None if value == "" or value.startswith("/") else "must start with /"


@dataclass(frozen=True)
class TLSConfig:
    """PEM values may be raw PEM, base64-encoded PEM or a file path."""

    enabled: bool = opt(False, "Turn TLS on.")
    cert_pem: str = opt("", "Certificate (PEM, base64 PEM or file path).")
    key_pem: str = opt("", "Private key (PEM, base64 PEM or file path).")
    server_ca_pem: str = opt("", "CA used to verify servers.")
    client_ca_pem: str = opt("", "CA used to verify clients (mutual TLS).")
    insecure_skip_verify: bool = opt(False, "Skip peer certificate verification (testing only).")
    server_name: str = opt("", "Server name to verify the peer certificate against.")


@dataclass(frozen=True)
class TLSAutocertConfig:
    enabled: bool = opt(False, "Obtain certificates automatically with ACME (Let's Encrypt).")
    host_whitelist: tuple[str, ...] = opt((), "Hosts allowed to request certificates.")
    cache_dir: str = opt("", "Directory where certificates are cached.")
    email: str = opt("", "Contact e-mail for the ACME account.")
    server_name: str = opt("", "Server name to use when the client sends no SNI.")
    http: bool = opt(False, "Serve the ACME HTTP-01 challenge.")
    http_addr: str = opt(":80", "Address of the HTTP-01 challenge server.")


@dataclass(frozen=True)
class HTTP3Config:
    enabled: bool = opt(False, "Serve HTTP/3 (experimental).")


@dataclass(frozen=True)
class HTTPServerConfig:
    address: str = opt("", "Interface to listen on; empty means all.")
    port: int = opt(8000, "Port of the external HTTP server.", check=port_range)
    internal_address: str = opt("", "Interface for internal endpoints (API, admin, metrics...).")
    internal_port: str = opt("", "Separate port for internal endpoints; empty shares the main port.")
    tls: TLSConfig = section(TLSConfig, "TLS of the main server.")
    tls_autocert: TLSAutocertConfig = section(TLSAutocertConfig, "Automatic certificates over ACME.")
    tls_external: bool = opt(False, "Use TLS only on the external port.")
    internal_tls: TLSConfig = section(TLSConfig, "TLS of the internal port.")
    http3: HTTP3Config = section(HTTP3Config, "HTTP/3 settings.")
    h2c_external: bool = opt(False, "Allow HTTP/2 without TLS (h2c) on the external port.")


@dataclass(frozen=True)
class WebSocketOptions:
    """Socket options both WebSocket endpoints share."""

    compression: bool = opt(False, "Negotiate permessage-deflate.")
    compression_min_size: int = opt(0, "Smallest message worth compressing, bytes.", check=non_negative)
    compression_level: int = opt(1, "Deflate level, 1 (fast) to 9 (small).")
    read_buffer_size: int = opt(0, "Read buffer size, bytes; 0 picks a default.", check=non_negative)
    use_write_buffer_pool: bool = opt(False, "Share write buffers between connections.")
    write_buffer_size: int = opt(0, "Write buffer size, bytes; 0 picks a default.", check=non_negative)
    write_timeout: float = dur("1000ms", "Longest time a write to one socket may take.")
    message_size_limit: int = opt(65536, "Largest accepted client message, bytes.", check=non_negative)
    decompressed_message_size_limit: int = opt(0, "Largest message after decompression, bytes.")


@dataclass(frozen=True)
class WebSocketConfig(WebSocketOptions):
    disabled: bool = opt(False, "Turn the bidirectional WebSocket endpoint off.")
    handler_prefix: str = opt("/connection/websocket", "Path of the endpoint.", check=handler_prefix)


@dataclass(frozen=True)
class UniWebSocketConfig(WebSocketOptions):
    enabled: bool = opt(False, "Turn the unidirectional WebSocket endpoint on.")
    handler_prefix: str = opt("/connection/uni_websocket", "Path of the endpoint.", check=handler_prefix)
    disable_closing_handshake: bool = opt(False, "Close the socket without a WebSocket close frame.")
    disable_disconnect_push: bool = opt(False, "Do not send the disconnect push before closing.")
    join_push_messages: bool = opt(False, "Send several pushes in one frame, newline-separated.")


@dataclass(frozen=True)
class TransformedHTTPResponse:
    status_code: int = opt(0, "HTTP status to answer with.")
    body: str = opt("", "Response body.")


@dataclass(frozen=True)
class ConnectCodeToHTTPResponseTransform:
    code: int = opt(0, "Connect error or disconnect code to transform.")
    to: TransformedHTTPResponse = section(TransformedHTTPResponse, "The HTTP response to send instead.")


@dataclass(frozen=True)
class ConnectCodeToHTTPResponse:
    enabled: bool = opt(False, "Answer connect failures with plain HTTP responses.")
    transforms: tuple[ConnectCodeToHTTPResponseTransform, ...] = opt((), "Code to response rules.")


@dataclass(frozen=True)
class UniSSEConfig:
    enabled: bool = opt(False, "Turn the unidirectional SSE endpoint on.")
    handler_prefix: str = opt("/connection/uni_sse", "Path of the endpoint.", check=handler_prefix)
    max_request_body_size: int = opt(65536, "Largest connect request body, bytes.", check=non_negative)
    connect_code_to_http_response: ConnectCodeToHTTPResponse = section(ConnectCodeToHTTPResponse)


@dataclass(frozen=True)
class UniHTTPStreamConfig:
    enabled: bool = opt(False, "Turn the unidirectional HTTP-streaming endpoint on.")
    handler_prefix: str = opt("/connection/uni_http_stream", "Path of the endpoint.", check=handler_prefix)
    max_request_body_size: int = opt(65536, "Largest connect request body, bytes.", check=non_negative)
    connect_code_to_http_response: ConnectCodeToHTTPResponse = section(ConnectCodeToHTTPResponse)


@dataclass(frozen=True)
class SSEConfig:
    enabled: bool = opt(False, "Turn the bidirectional SSE endpoint on (uses emulation).")
    handler_prefix: str = opt("/connection/sse", "Path of the endpoint.", check=handler_prefix)
    max_request_body_size: int = opt(65536, "Largest connect request body, bytes.", check=non_negative)


@dataclass(frozen=True)
class HTTPStreamConfig:
    enabled: bool = opt(False, "Turn the bidirectional HTTP-streaming endpoint on (uses emulation).")
    handler_prefix: str = opt("/connection/http_stream", "Path of the endpoint.", check=handler_prefix)
    max_request_body_size: int = opt(65536, "Largest connect request body, bytes.", check=non_negative)


@dataclass(frozen=True)
class SockJSConfig:
    """rotary's own section, not a Centrifugo v6 key: Centrifugo v4/v5 served SockJS (top-level
    ``sockjs``, ``sockjs_url``, ``sockjs_heartbeat_delay``) and v6 dropped it. rotary keeps it, opt-in,
    for centrifuge-js clients still configured with ``sockjs-client``; JSON protocol only."""

    enabled: bool = opt(False, "Serve SockJS (rotary's own key; Centrifugo v6 has no SockJS).")
    handler_prefix: str = opt(
        "/connection/sockjs", "Path prefix of the SockJS endpoints.", check=handler_prefix
    )
    url: str = opt(
        "https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js",
        "sockjs-client script the iframe page loads; use the version your clients use.",
    )
    heartbeat_delay: float = dur(
        "25s",
        "How often SockJS heartbeat frames go to idle sessions; 0 sends none.",
        check=non_negative,
    )


@dataclass(frozen=True)
class WebTransportConfig:
    enabled: bool = opt(False, "Turn the WebTransport endpoint on (experimental, needs HTTP/3).")
    handler_prefix: str = opt("/connection/webtransport", "Path of the endpoint.", check=handler_prefix)
    message_size_limit: int = opt(65536, "Largest accepted client message, bytes.", check=non_negative)


@dataclass(frozen=True)
class UniGRPCConfig:
    enabled: bool = opt(False, "Turn the unidirectional GRPC server on.")
    address: str = opt("", "Interface to listen on.")
    port: int = opt(11000, "Port of the unidirectional GRPC server.", check=port_range)
    max_receive_message_size: int = opt(0, "Largest accepted message, bytes; 0 picks a default.")
    tls: TLSConfig = section(TLSConfig, "TLS of the GRPC server.")


@dataclass(frozen=True)
class EmulationConfig:
    handler_prefix: str = opt("/emulation", "Path that receives commands of emulated transports.")
    max_request_body_size: int = opt(65536, "Largest emulation request body, bytes.", check=non_negative)


@dataclass(frozen=True)
class ConnInitConfig:
    enabled: bool = opt(False, "Turn the connection init endpoint on.")
    handler_prefix: str = opt("/connection/init", "Path of the endpoint.", check=handler_prefix)


@dataclass(frozen=True)
class HttpAPIConfig:
    disabled: bool = opt(False, "Turn the HTTP server API off.")
    handler_prefix: str = opt("/api", "Path prefix of the API.", check=handler_prefix)
    key: str = opt("", "API key expected in the X-API-Key header or `Authorization: apikey <key>`.")
    error_mode: str = opt("", "Set to `transport` to map API errors onto HTTP status codes.")
    external: bool = opt(False, "Serve the API on the external port.")
    insecure: bool = opt(False, "Accept API requests without a key.")


@dataclass(frozen=True)
class GrpcAPIConfig:
    enabled: bool = opt(False, "Turn the GRPC server API on.")
    error_mode: str = opt("", "Set to `transport` to map API errors onto GRPC status codes.")
    address: str = opt("", "Interface to listen on.")
    port: int = opt(10000, "Port of the GRPC API server.", check=port_range)
    key: str = opt("", "API key expected in the `authorization: apikey <key>` metadata.")
    tls: TLSConfig = section(TLSConfig, "TLS of the GRPC API server.")
    reflection: bool = opt(False, "Turn GRPC server reflection on.")
    max_receive_message_size: int = opt(0, "Largest accepted message, bytes; 0 picks a default.")
