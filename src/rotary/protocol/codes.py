"""Centrifugo's reply error, unsubscribe and disconnect codes, as data.

Every number here is part of the wire contract the official SDKs act on: an SDK reconnects after a
disconnect code in 3000-3499 or 4000-4499 and gives up after 3500-3999 or 4500-4999; it resubscribes
after an unsubscribe code >= 2500. See https://centrifugal.dev/docs/transports/client_protocol
(sections "Error codes" and "Disconnect codes").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """A reply error: the client's command failed but the connection stays up."""

    code: int
    message: str
    temporary: bool = False


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Why a connection is closed; bidirectional WebSocket sends it as the close code and reason."""

    code: int
    reason: str

    @property
    def reconnect(self) -> bool:
        """Whether an SDK that receives this code will try to connect again."""
        return self.code < 3500 or 4000 <= self.code < 4500 or self.code >= 5000


@dataclass(frozen=True, slots=True)
class UnsubscribeCode:
    """Why the server ended a subscription; >= 2500 makes the SDK resubscribe."""

    code: int
    reason: str


ERROR_INTERNAL: Final = ErrorCode(100, "internal server error", temporary=True)
ERROR_UNAUTHORIZED: Final = ErrorCode(101, "unauthorized")
ERROR_UNKNOWN_CHANNEL: Final = ErrorCode(102, "unknown channel")
ERROR_PERMISSION_DENIED: Final = ErrorCode(103, "permission denied")
ERROR_METHOD_NOT_FOUND: Final = ErrorCode(104, "method not found")
ERROR_ALREADY_SUBSCRIBED: Final = ErrorCode(105, "already subscribed")
ERROR_LIMIT_EXCEEDED: Final = ErrorCode(106, "limit exceeded")
ERROR_BAD_REQUEST: Final = ErrorCode(107, "bad request")
ERROR_NOT_AVAILABLE: Final = ErrorCode(108, "not available")
ERROR_TOKEN_EXPIRED: Final = ErrorCode(109, "token expired")
ERROR_EXPIRED: Final = ErrorCode(110, "expired")
ERROR_TOO_MANY_REQUESTS: Final = ErrorCode(111, "too many requests", temporary=True)
ERROR_UNRECOVERABLE_POSITION: Final = ErrorCode(112, "unrecoverable position")
ERROR_CONCURRENT_PAGINATION: Final = ErrorCode(113, "concurrent pagination", temporary=True)

ERRORS: Final[dict[int, ErrorCode]] = {
    e.code: e
    for e in (
        ERROR_INTERNAL,
        ERROR_UNAUTHORIZED,
        ERROR_UNKNOWN_CHANNEL,
        ERROR_PERMISSION_DENIED,
        ERROR_METHOD_NOT_FOUND,
        ERROR_ALREADY_SUBSCRIBED,
        ERROR_LIMIT_EXCEEDED,
        ERROR_BAD_REQUEST,
        ERROR_NOT_AVAILABLE,
        ERROR_TOKEN_EXPIRED,
        ERROR_EXPIRED,
        ERROR_TOO_MANY_REQUESTS,
        ERROR_UNRECOVERABLE_POSITION,
        ERROR_CONCURRENT_PAGINATION,
    )
}

UNSUBSCRIBE_SERVER: Final = UnsubscribeCode(2000, "server unsubscribe")
UNSUBSCRIBE_INSUFFICIENT_STATE: Final = UnsubscribeCode(2500, "insufficient state")
UNSUBSCRIBE_EXPIRED: Final = UnsubscribeCode(2501, "subscription expired")
UNSUBSCRIBE_STATE_INVALIDATED: Final = UnsubscribeCode(2502, "state invalidated")

DISCONNECT_CONNECTION_CLOSED: Final = Disconnect(3000, "connection closed")
DISCONNECT_SHUTDOWN: Final = Disconnect(3001, "shutdown")
DISCONNECT_SERVER_ERROR: Final = Disconnect(3004, "internal server error")
DISCONNECT_EXPIRED: Final = Disconnect(3005, "connection expired")
DISCONNECT_SUB_EXPIRED: Final = Disconnect(3006, "subscription expired")
DISCONNECT_SLOW: Final = Disconnect(3008, "slow")
DISCONNECT_WRITE_ERROR: Final = Disconnect(3009, "write error")
DISCONNECT_INSUFFICIENT_STATE: Final = Disconnect(3010, "insufficient state")
DISCONNECT_FORCE_RECONNECT: Final = Disconnect(3011, "force reconnect")
DISCONNECT_NO_PONG: Final = Disconnect(3012, "no pong")
DISCONNECT_TOO_MANY_REQUESTS: Final = Disconnect(3013, "too many requests")
DISCONNECT_STATE_INVALIDATED: Final = Disconnect(3014, "state invalidated")
DISCONNECT_INVALID_TOKEN: Final = Disconnect(3500, "invalid token")
DISCONNECT_BAD_REQUEST: Final = Disconnect(3501, "bad request")
DISCONNECT_STALE: Final = Disconnect(3502, "stale")
DISCONNECT_FORCE_NO_RECONNECT: Final = Disconnect(3503, "force disconnect")
DISCONNECT_CONNECTION_LIMIT: Final = Disconnect(3504, "connection limit")
DISCONNECT_CHANNEL_LIMIT: Final = Disconnect(3505, "channel limit")
DISCONNECT_INAPPROPRIATE_PROTOCOL: Final = Disconnect(3506, "inappropriate protocol")
DISCONNECT_PERMISSION_DENIED: Final = Disconnect(3507, "permission denied")
DISCONNECT_NOT_AVAILABLE: Final = Disconnect(3508, "not available")
DISCONNECT_TOO_MANY_ERRORS: Final = Disconnect(3509, "too many errors")
