"""Connection and subscription JWTs: verification for the server, and what a token grants.

See https://centrifugal.dev/docs/server/authentication and
https://centrifugal.dev/docs/server/channel_token_auth.
"""

from rotary.server.tokens.claims import (
    ConnectToken,
    Override,
    SubscriptionGrant,
    SubscriptionToken,
    TokenError,
    TokenExpiredError,
)
from rotary.server.tokens.keys import TokenConfigError
from rotary.server.tokens.verifier import TokenVerifier

__all__ = [
    "ConnectToken",
    "Override",
    "SubscriptionGrant",
    "SubscriptionToken",
    "TokenConfigError",
    "TokenError",
    "TokenExpiredError",
    "TokenVerifier",
]
