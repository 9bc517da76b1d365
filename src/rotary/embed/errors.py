"""Errors a hook raises: a reply error with a Centrifugo code, or the end of the connection.

The codes are Centrifugo's (https://centrifugal.dev/docs/transports/client_protocol#error-codes and
#disconnect-codes): the official SDKs act on them, so a hook picks the meaning a client SDK will see.
"""

from __future__ import annotations

from rotary.node import errors
from rotary.protocol import codes


class ClientError(errors.ClientError):
    """Fails the client's command with this error code; the connection stays open.

    Raised from ``on_connecting`` it fails the connect (the SDK retries a temporary error and
    reports the others). Use the subclasses below for Centrifugo's common codes, or your own code
    from 400 to 1999 (Centrifugo leaves those to applications).
    """

    def __init__(self, code: int, message: str = "", *, temporary: bool = False) -> None:
        known = codes.ERRORS.get(code)
        message = message or (known.message if known is not None else "")
        super().__init__(codes.ErrorCode(code, message, temporary))


class _Coded(ClientError):
    _code: codes.ErrorCode

    def __init__(self, message: str = "") -> None:
        super().__init__(self._code.code, message or self._code.message, temporary=self._code.temporary)


class Unauthorized(_Coded):
    """101."""

    _code = codes.ERROR_UNAUTHORIZED


class UnknownChannel(_Coded):
    """102."""

    _code = codes.ERROR_UNKNOWN_CHANNEL


class PermissionDenied(_Coded):
    """103."""

    _code = codes.ERROR_PERMISSION_DENIED


class MethodNotFound(_Coded):
    """104: an RPC method the application does not have."""

    _code = codes.ERROR_METHOD_NOT_FOUND


class LimitExceeded(_Coded):
    """106."""

    _code = codes.ERROR_LIMIT_EXCEEDED


class BadRequest(_Coded):
    """107."""

    _code = codes.ERROR_BAD_REQUEST


class NotAvailable(_Coded):
    """108: the feature is off for this channel."""

    _code = codes.ERROR_NOT_AVAILABLE


class TokenExpired(_Coded):
    """109: the SDK fetches a new token and tries again."""

    _code = codes.ERROR_TOKEN_EXPIRED


class Expired(_Coded):
    """110."""

    _code = codes.ERROR_EXPIRED


class TooManyRequests(_Coded):
    """111 (temporary: the SDK retries)."""

    _code = codes.ERROR_TOO_MANY_REQUESTS


class Disconnect(errors.DisconnectError):
    """Closes the connection with this code and reason.

    Applications use 4000-4499 (the SDK reconnects) and 4500-4999 (it does not); Centrifugo's own
    3000-3999 codes are accepted too, for example 3500 "invalid token". The reason is at most 123
    bytes of UTF-8 (a WebSocket close frame's limit).
    """

    def __init__(self, code: int, reason: str = "") -> None:
        if not 3000 <= code <= 4999:
            raise ValueError(f"disconnect code {code} is outside 3000-4999")
        if len(reason.encode()) > 123:
            raise ValueError("a disconnect reason is at most 123 bytes")
        super().__init__(codes.Disconnect(code, reason))
        self.code = code
        self.reason = reason


_NAMED: dict[int, type[_Coded]] = {
    named._code.code: named
    for named in (
        Unauthorized,
        UnknownChannel,
        PermissionDenied,
        MethodNotFound,
        LimitExceeded,
        BadRequest,
        NotAvailable,
        TokenExpired,
        Expired,
        TooManyRequests,
    )
}


def error_for(code: int, message: str, temporary: bool) -> ClientError:
    """An error reply as the exception a hook would raise for it: the named one for its code."""
    named = _NAMED.get(code)
    if named is not None and message == named._code.message:
        return named()
    return ClientError(code, message, temporary=temporary)
