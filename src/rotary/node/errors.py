"""The two ways a client-facing operation fails: a reply error, or the end of the connection."""

from __future__ import annotations

from rotary.protocol.codes import Disconnect, ErrorCode


class ClientError(Exception):
    """Answer the command with this error; the connection stays open."""

    def __init__(self, error: ErrorCode, message: str = "") -> None:
        super().__init__(message or error.message)
        self.error = error
        self.code = error.code
        self.message = message or error.message
        self.temporary = error.temporary


class DisconnectError(Exception):
    """Close the connection with this disconnect code and reason."""

    def __init__(self, disconnect: Disconnect) -> None:
        super().__init__(f"{disconnect.code} {disconnect.reason}")
        self.disconnect = disconnect
