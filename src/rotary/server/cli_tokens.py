"""The token helper commands: ``gentoken``, ``gensubtoken``, ``checktoken`` and ``checksubtoken``.

They print what Centrifugo's commands print and exit with the same codes
(https://centrifugal.dev/docs/server/console_commands). Generated tokens are HS256 only, signed with
the configured HMAC secret; checks use the same verifier as the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import jwt

from rotary.server.config import ConfigError
from rotary.server.config.load import load_config
from rotary.server.config.schema import Config, TokenConfig
from rotary.server.tokens import TokenConfigError, TokenError, TokenVerifier

DEFAULT_TTL = 3600 * 24 * 7

MALFORMED_TOKEN = "token format is not valid"
"""What Centrifugo says of a token it cannot even split and decode, whatever is wrong with it."""

_NO_HMAC_KEY = (
    "{command} only supports generating HMAC-signed tokens, but no HMAC secret key is set in the "
    "configuration ({keys}) – if you use RSA/ECDSA/JWKS token verification you need to generate the JWT "
    "with your own tooling"
)


class CommandFailed(Exception):
    """Printed as-is, exit code 1."""


def register(subparsers: Any) -> None:
    gen = subparsers.add_parser("gentoken", help="Generate sample connection JWT for user")
    _add_generation_flags(gen, "user ID, by default anonymous")
    gen.set_defaults(handler=_command(cmd_gentoken))
    gensub = subparsers.add_parser("gensubtoken", help="Generate sample subscription JWT for user")
    _add_generation_flags(gensub, "user ID")
    gensub.add_argument("-s", "--channel", default="", help="channel")
    gensub.set_defaults(handler=_command(cmd_gensubtoken))
    for name, handler, help_text in (
        ("checktoken", cmd_checktoken, "Check connection JWT"),
        ("checksubtoken", cmd_checksubtoken, "Check subscription JWT"),
    ):
        check = subparsers.add_parser(name, help=help_text)
        check.add_argument("-c", "--config", default="config.json", help="path to config file")
        check.add_argument("token", nargs="*", metavar="TOKEN")
        check.set_defaults(handler=_command(handler))


def _add_generation_flags(parser: argparse.ArgumentParser, user_help: str) -> None:
    parser.add_argument("-c", "--config", default="config.json", help="path to config file")
    parser.add_argument("-u", "--user", default="", help=user_help)
    parser.add_argument(
        "-t",
        "--ttl",
        type=int,
        default=DEFAULT_TTL,
        help="token TTL in seconds, use -1 for token without expiration",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="only output the token without anything else"
    )


def _command(run: Callable[[argparse.Namespace], None]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        try:
            run(args)
        except CommandFailed as exc:
            print(exc)
            return 1
        return 0

    return handler


def _config(path: str) -> Config:
    """A missing config file is not an error: settings may come from the environment alone."""
    try:
        return load_config(path if os.path.exists(path) else "", os.environ, {}).config
    except ConfigError as exc:
        raise CommandFailed(f"error getting config: {exc}") from None


def _signing_config(config: Config) -> TokenConfig:
    """Subscription tokens use their own settings only when those are enabled, as the server does."""
    sub = config.client.subscription_token
    return sub if sub.enabled else config.client.token


def go_duration(seconds: int) -> str:
    """Whole seconds the way Go prints a time.Duration (``168h0m0s``, ``1m0s``, ``30s``)."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _sign(token: TokenConfig, claims: dict[str, Any], ttl: int, extra: dict[str, Any] | None = None) -> str:
    """Signs ``claims``, then exp and iat, then ``extra``: Centrifugo's claim order."""
    now = int(time.time())
    if ttl > 0:
        claims["exp"] = now + ttl
    claims["iat"] = now
    claims.update(extra or {})
    if token.user_id_claim:
        claims[token.user_id_claim] = claims.get("sub", "")
    with warnings.catch_warnings():
        # A short secret is the operator's choice; the server accepts it, so the generator does too.
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.encode(claims, token.hmac_secret_key, algorithm="HS256")


def _print_generated(args: argparse.Namespace, token: str, subject: str) -> None:
    if args.quiet:
        print(token, end="")
        return
    expiry = f"with expiration TTL {go_duration(args.ttl)}" if args.ttl >= 0 else "without expiration"
    print(f"HMAC SHA-256 JWT for {subject} {expiry}:\n{token}")


def _user_phrase(user: str) -> str:
    return f'user "{user}"' if user else "anonymous user"


def cmd_gentoken(args: argparse.Namespace) -> None:
    token_config = _config(args.config).client.token
    if not token_config.hmac_secret_key:
        raise CommandFailed(
            "error: " + _NO_HMAC_KEY.format(command="gentoken", keys="client.token.hmac_secret_key")
        )
    claims: dict[str, Any] = {"sub": args.user} if args.user else {}
    _print_generated(args, _sign(token_config, claims, args.ttl), _user_phrase(args.user))


def cmd_gensubtoken(args: argparse.Namespace) -> None:
    config = _config(args.config)
    if not args.channel:
        raise CommandFailed("channel is required")
    token_config = _signing_config(config)
    if not token_config.hmac_secret_key:
        keys = (
            "client.subscription_token.hmac_secret_key, or client.token.hmac_secret_key when subscription "
            "token is not separately configured"
        )
        raise CommandFailed("error: " + _NO_HMAC_KEY.format(command="gensubtoken", keys=keys))
    claims: dict[str, Any] = {"sub": args.user} if args.user else {}
    token = _sign(token_config, claims, args.ttl, {"channel": args.channel})
    _print_generated(args, token, f'{_user_phrase(args.user)} and channel "{args.channel}"')


def _check(
    args: argparse.Namespace, command: str, verify: Callable[[TokenVerifier, str], Awaitable[Any]]
) -> tuple[Any, str]:
    """Verify the one TOKEN argument; returns what the verifier granted and the raw payload."""
    config = _config(args.config)
    if len(args.token) != 1:
        raise CommandFailed(f"error: provide token to check [rotary {command} <TOKEN>]")
    raw = args.token[0]
    try:
        parts = jwt.PyJWS().decode_complete(raw, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise CommandFailed(f"error: {MALFORMED_TOKEN}") from None
    payload = parts["payload"].decode(errors="replace")
    try:
        granted = asyncio.run(_verify(config, raw, verify))
    except TokenConfigError as exc:
        raise CommandFailed(f"error: {exc}") from None
    except TokenError as exc:
        algorithm = parts["header"].get("alg", "")
        raise CommandFailed(
            f"error: token with algorithm {algorithm} and claims {payload} has error: {exc}"
        ) from None
    return granted, payload


async def _verify(config: Config, raw: str, verify: Callable[[TokenVerifier, str], Awaitable[Any]]) -> Any:
    verifier = TokenVerifier(config.client.token, config.client.subscription_token)
    try:
        return await verify(verifier, raw)
    finally:
        await verifier.close()


def cmd_checktoken(args: argparse.Namespace) -> None:
    granted, payload = _check(args, "checktoken", TokenVerifier.verify_connect_token)
    user = f"user {granted.user}" if granted.user else "anonymous user"
    print(f"valid token for {user}\npayload: {payload}")


def cmd_checksubtoken(args: argparse.Namespace) -> None:
    granted, payload = _check(args, "checksubtoken", TokenVerifier.verify_subscription_token)
    print(f'valid subscription token for {_user_phrase(granted.user)} and channel "{granted.channel}"')
    print(f"payload: {payload}")
