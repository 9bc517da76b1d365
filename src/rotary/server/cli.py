"""The ``rotary`` command: run the server, or one of Centrifugo's helper commands.

The root command takes Centrifugo's flags (``--http_server.port`` ...) and runs the server;
``version``, ``genconfig``, ``checkconfig``, ``defaultconfig``, ``defaultenv``, ``configdoc`` and
``serve`` behave like their Centrifugo namesakes, printing the same messages and returning the same
exit codes.
See https://centrifugal.dev/docs/server/console_commands
"""

from __future__ import annotations

import argparse
import base64
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import platform
import sys
from collections.abc import Callable, Mapping
from typing import Any

from rotary.server import cli_dev
from rotary.server.config import ConfigError
from rotary.server.config.dump import SUPPORTED_EXTENSIONS, env_lines, extension_of, render, to_tree
from rotary.server.config.fields import doc_at
from rotary.server.config.load import LoadResult, load_config, read_dotenv
from rotary.server.config.schema import Config
from rotary.server.config.unbuilt import unbuilt_paths

# (flag names, config key, type): the root command's flags, Centrifugo's set.
ROOT_FLAGS: tuple[tuple[tuple[str, ...], str, type], ...] = (
    (("--pid_file",), "pid_file", str),
    (("-a", "--http_server.address", "--address"), "http_server.address", str),
    (("-p", "--http_server.port", "--port"), "http_server.port", int),
    (("--http_server.internal_address",), "http_server.internal_address", str),
    (("--http_server.internal_port",), "http_server.internal_port", str),
    (("--engine.type",), "engine.type", str),
    (("--broker.enabled",), "broker.enabled", bool),
    (("--broker.type",), "broker.type", str),
    (("--presence_manager.enabled",), "presence_manager.enabled", bool),
    (("--presence_manager.type",), "presence_manager.type", str),
    (("--map_broker.type",), "map_broker.type", str),
    (("--log.level",), "log.level", str),
    (("--log.file",), "log.file", str),
    (("--debug.enabled",), "debug.enabled", bool),
    (("--admin.enabled",), "admin.enabled", bool),
    (("--admin.external",), "admin.external", bool),
    (("--admin.insecure",), "admin.insecure", bool),
    (("--prometheus.enabled",), "prometheus.enabled", bool),
    (("--swagger.enabled",), "swagger.enabled", bool),
    (("--health.enabled",), "health.enabled", bool),
    (("--uni_websocket.enabled",), "uni_websocket.enabled", bool),
    (("--uni_sse.enabled",), "uni_sse.enabled", bool),
    (("--uni_http_stream.enabled",), "uni_http_stream.enabled", bool),
    (("--sse.enabled",), "sse.enabled", bool),
    (("--http_stream.enabled",), "http_stream.enabled", bool),
    (("--init.enabled",), "init.enabled", bool),
    (("--client.insecure",), "client.insecure", bool),
    (("--http_api.insecure",), "http_api.insecure", bool),
    (("--http_api.external",), "http_api.external", bool),
    (("--grpc_api.enabled",), "grpc_api.enabled", bool),
    (("--grpc_api.port",), "grpc_api.port", int),
    (("--uni_grpc.enabled",), "uni_grpc.enabled", bool),
    (("--uni_grpc.port",), "uni_grpc.port", int),
)

GENERATED_SECRETS = {"token": 64, "admin_password": 16, "admin_secret": 64, "api_key": 64}
"""Random bytes behind each secret genconfig writes (URL-safe base64 without padding)."""

log = logging.getLogger("rotary.server.cli")


def version_string() -> str:
    try:
        version = importlib.metadata.version("rotary")
    except importlib.metadata.PackageNotFoundError:
        version = "0.0.0"
    return f"rotary v{version} (Python version: {platform.python_version()})"


def flag_help(key: str) -> str:
    """The schema's doc of a flag's key; hidden (still accepted, then refused by validation with the
    key named) when the key or the feature it belongs to is not built yet."""
    section = key.rsplit(".", 1)[0]
    if unbuilt_paths() & {key, f"{section}.enabled"}:
        return argparse.SUPPRESS
    return doc_at(Config, key)


def build_parser() -> argparse.ArgumentParser:
    description = "Real-time messaging server compatible with Centrifugo v6."
    parser = argparse.ArgumentParser(prog="rotary", description=description)
    parser.add_argument("-c", "--config", default="config.json", help="path to config file")
    for names, key, kind in ROOT_FLAGS:
        shown = flag_help(key)
        if kind is bool:
            parser.add_argument(*names, dest=key, action="store_const", const=True, default=None, help=shown)
        else:
            parser.add_argument(*names, dest=key, type=kind, default=None, help=shown, metavar=kind.__name__)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the port (0 = one per core); needs a shared broker",
    )
    parser.set_defaults(handler=run)
    commands = parser.add_subparsers(dest="command", metavar="command")
    _add_commands(commands)
    return parser


def _add_commands(commands: Any) -> None:
    version = commands.add_parser("version", help="print the version")
    version.set_defaults(handler=cmd_version)
    gen = commands.add_parser("genconfig", help="write a minimal config with random secrets")
    gen.add_argument("-c", "--config", default="config.json", help="path of the config file to write")
    gen.set_defaults(handler=cmd_genconfig)
    check = commands.add_parser("checkconfig", help="validate a config file")
    check.add_argument("-c", "--config", default="config.json", help="path of the config file to check")
    check.add_argument("-s", "--strict", action="store_true", help="fail on unknown keys")
    check.set_defaults(handler=cmd_checkconfig)
    full = commands.add_parser("defaultconfig", help="write the full config with every default")
    full.add_argument("-c", "--config", default="config.json", help="path of the config file to write")
    full.add_argument("-b", "--base", default="", help="config file to start from")
    full.add_argument("-d", "--dry-run", action="store_true", help="print to stdout instead of writing")
    full.set_defaults(handler=cmd_defaultconfig)
    env = commands.add_parser("defaultenv", help="print every environment variable with its default")
    env.add_argument("-b", "--base", default="", help="config file to start from")
    env.add_argument("--base-non-zero-only", action="store_true", help="only values set by the base file")
    env.set_defaults(handler=cmd_defaultenv)
    cli_dev.register(commands)
    if importlib.util.find_spec("rotary.server.cli_tokens") is not None:
        importlib.import_module("rotary.server.cli_tokens").register(commands)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


def environment() -> dict[str, str]:
    """The process environment, completed by a ``.env`` file in the working directory."""
    return {**read_dotenv(), **os.environ}


def run(args: argparse.Namespace) -> int:
    flags = {key: getattr(args, key) for _, key, _ in ROOT_FLAGS if getattr(args, key) is not None}
    explicit = args.config if args.config != "config.json" else None
    try:
        result = load_config(explicit, environment(), flags)
    except ConfigError as exc:
        _print_problems(exc)
        return 1
    from rotary.server.log import setup_logging

    try:
        setup_logging(result.config.log)
    except OSError as exc:
        print(f"log.file: cannot open {result.config.log.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for warning in result.warnings:
        log.warning(warning)
    if result.config.pid_file:
        try:
            with open(result.config.pid_file, "w", encoding="utf-8") as file:
                file.write(f"{os.getpid()}\n")
        except OSError as exc:
            log.error("pid_file: cannot write %s: %s", result.config.pid_file, exc.strerror or exc)
            return 1
    from rotary.server import workers

    if args.workers != 1 and not workers.is_worker():
        problem = workers.refusal(result.config)
        if problem is not None:
            log.error(problem)
            return 1
        return workers.Supervisor(workers.worker_count(args.workers), _without_workers(sys.argv[1:])).run()
    from rotary.server.app import run_server

    def reload() -> Config:
        return load_config(explicit, environment(), flags).config

    code: int = run_server(result.config, reload, reuse_port=workers.is_worker())
    return code


def _without_workers(argv: list[str]) -> list[str]:
    """The command line minus its --workers option, for the worker processes."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


def cmd_version(args: argparse.Namespace) -> int:
    print(version_string())
    return 0


def _secret(size: int) -> str:
    return base64.urlsafe_b64encode(os.urandom(size)).rstrip(b"=").decode()


def genconfig_tree() -> dict[str, Any]:
    return {
        "client": {
            "token": {"hmac_secret_key": _secret(GENERATED_SECRETS["token"])},
            "allowed_origins": [],
        },
        "admin": {
            "enabled": False,
            "password": _secret(GENERATED_SECRETS["admin_password"]),
            "secret": _secret(GENERATED_SECRETS["admin_secret"]),
        },
        "http_api": {"key": _secret(GENERATED_SECRETS["api_key"])},
    }


def cmd_genconfig(args: argparse.Namespace) -> int:
    path: str = args.config
    if os.path.exists(path):
        print(f"error: output config file already exists: {path}")
        return 1
    extension = extension_of(path)
    if extension not in SUPPORTED_EXTENSIONS:
        choices = ", ".join(SUPPORTED_EXTENSIONS)
        print(f"error: output config file must have one of supported extensions: {choices}")
        return 1
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(render(genconfig_tree(), extension))
    try:
        load_config(path, environment())
    except ConfigError as exc:
        os.remove(path)
        print(f"error validating config: {'; '.join(exc.problems)}")
        return 1
    return 0


def cmd_checkconfig(args: argparse.Namespace) -> int:
    if not os.path.exists(args.config):
        print("config file not found")
        return 1
    try:
        result = load_config(args.config, environment())
    except ConfigError as exc:
        _print_problems(exc, sys.stdout)
        return 1
    if args.strict and result.unknown_keys:
        print(f"unknown keys in config: {', '.join(result.unknown_keys)}")
        return 1
    return 0


def _load_base(base: str, environ: Mapping[str, str]) -> LoadResult | None:
    try:
        return load_config(base, environ)
    except ConfigError as exc:
        print(f"error: {'; '.join(exc.problems)}")
        return None


def cmd_defaultconfig(args: argparse.Namespace) -> int:
    path: str = args.config
    if not args.dry_run and os.path.exists(path):
        print("error: target file already exists")
        return 1
    result = _load_base(args.base, environment())
    if result is None:
        return 1
    try:
        text = render(to_tree(result.config), extension_of(path))
    except ValueError as exc:
        print(f"error: {exc}")
        return 1
    if args.dry_run:
        sys.stdout.write(text)
        return 0
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
    return 0


def cmd_defaultenv(args: argparse.Namespace) -> int:
    result = _load_base(args.base, environment())
    if result is None:
        return 1
    for line in env_lines(result.config, non_zero_only=args.base_non_zero_only):
        print(line)
    return 0


def _print_problems(exc: ConfigError, stream: Any = None) -> None:
    out = stream or sys.stderr
    print("error validating config:", file=out)
    for problem in exc.problems:
        print(f"  {problem}", file=out)
