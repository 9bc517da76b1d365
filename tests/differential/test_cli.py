"""The command line of rotary and Centrifugo side by side: checkconfig verdicts on the same config
files and CENTRIFUGO_* environments, the key sets of defaultconfig and defaultenv, and what the token
commands print (tokens themselves normalized). See https://centrifugal.dev/docs/server/console_commands.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from helpers.centrifugo import centrifugo_binary
from helpers.env import free_port

from differential.runner import SECRET, assert_same
from rotary.server.cli import main
from rotary.server.config.durations import parse_duration

TIMEOUT = 60
ROTARY = Path(sys.executable).with_name("rotary")
JWT = re.compile(r"eyJ[\w-]*\.[\w-]*\.[\w-]*")
MINIMAL: dict[str, Any] = {"client": {"token": {"hmac_secret_key": SECRET}}}

STATIC_HEADERS: dict[str, Any] = {
    "client": {
        **MINIMAL["client"],
        "proxy": {
            "connect": {"http": {"static_headers": {"Authorization": "Bearer ${CENTRIFUGO_VAR_TOKEN}"}}}
        },
    }
}
"""A string map with a ``${CENTRIFUGO_VAR_...}`` reference, on a proxy that is not enabled."""


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., dict[str, Outcome]]:
    """``run_both(args, env)``: ``centrifugo *args`` as a process and ``rotary *args`` through the
    console script's own entry point (``rotary.server.cli.main``) in this process, which spares a
    Python start per case; both see the same working directory and the same CENTRIFUGO_*
    variables (none but ``env``)."""
    centrifugo = centrifugo_binary()
    monkeypatch.chdir(tmp_path)
    for name in os.environ:
        if name.startswith(("CENTRIFUGO_", "ROTARY_")):
            monkeypatch.delenv(name)

    def run(args: list[str], env: dict[str, str] | None = None) -> dict[str, Outcome]:
        env = env or {}
        reference = subprocess.run(
            [centrifugo, *args],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        with monkeypatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            capsys.readouterr()
            try:
                code = main(args)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            out, err = capsys.readouterr()
        return {
            "centrifugo": Outcome(reference.returncode, reference.stdout, reference.stderr),
            "rotary": Outcome(code, out, err),
        }

    return run


# checkconfig ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigCase:
    name: str
    config: dict[str, Any] | str = field(default_factory=lambda: MINIMAL)
    env: dict[str, str] = field(default_factory=dict)
    filename: str = "config.json"
    xfail: str | None = None


CONFIG_CASES = [
    ConfigCase("minimal"),
    ConfigCase("empty-object", {}),
    ConfigCase("bad-json", "{bad"),
    ConfigCase("unknown-top-level-key", {**MINIMAL, "nosuch": 1}),
    ConfigCase("yaml", "client:\n  token:\n    hmac_secret_key: x\n", filename="config.yaml"),
    ConfigCase("bad-yaml", "client: [\n", filename="config.yaml"),
    ConfigCase("toml", '[client.token]\nhmac_secret_key = "x"\n', filename="config.toml"),
    ConfigCase("bad-toml", "[client\n", filename="config.toml"),
    ConfigCase("env-secret", {}, {"CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY": "x"}),
    ConfigCase("env-port-not-int", env={"CENTRIFUGO_HTTP_SERVER_PORT": "abc"}),
    ConfigCase("env-port", env={"CENTRIFUGO_HTTP_SERVER_PORT": "9000"}),
    ConfigCase("env-bool", env={"CENTRIFUGO_CLIENT_INSECURE": "true"}),
    ConfigCase("env-bool-bad", env={"CENTRIFUGO_CLIENT_INSECURE": "maybe"}),
    ConfigCase("env-duration", env={"CENTRIFUGO_CLIENT_PING_INTERVAL": "10s"}),
    ConfigCase("env-duration-bad", env={"CENTRIFUGO_CLIENT_PING_INTERVAL": "ten"}),
    ConfigCase("env-list-json", env={"CENTRIFUGO_CLIENT_ALLOWED_ORIGINS": '["http://a", "http://b"]'}),
    ConfigCase("env-list-spaces", env={"CENTRIFUGO_CLIENT_ALLOWED_ORIGINS": "http://a http://b"}),
    ConfigCase(
        "env-namespaces",
        env={"CENTRIFUGO_CHANNEL_NAMESPACES": '[{"name": "ns", "presence": true}]'},
    ),
    ConfigCase("env-namespaces-bad-json", env={"CENTRIFUGO_CHANNEL_NAMESPACES": "not json"}),
    ConfigCase("env-namespace-bad-name", env={"CENTRIFUGO_CHANNEL_NAMESPACES": '[{"name": "bad name!"}]'}),
    ConfigCase(
        "env-namespaces-duplicate",
        env={"CENTRIFUGO_CHANNEL_NAMESPACES": '[{"name": "ns"}, {"name": "ns"}]'},
    ),
    ConfigCase("env-unknown-key", env={"CENTRIFUGO_NO_SUCH_KEY": "1"}),
    ConfigCase("env-engine-unknown", env={"CENTRIFUGO_ENGINE_TYPE": "nosuch"}),
    ConfigCase("env-log-level-unknown", env={"CENTRIFUGO_LOG_LEVEL": "nosuch"}),
    ConfigCase("env-history-without-ttl", env={"CENTRIFUGO_CHANNEL_WITHOUT_NAMESPACE_HISTORY_SIZE": "10"}),
    ConfigCase(
        "env-history-with-ttl",
        env={
            "CENTRIFUGO_CHANNEL_WITHOUT_NAMESPACE_HISTORY_SIZE": "10",
            "CENTRIFUGO_CHANNEL_WITHOUT_NAMESPACE_HISTORY_TTL": "60s",
        },
    ),
    ConfigCase("env-over-file", {"http_server": {"port": 9000}}, {"CENTRIFUGO_HTTP_SERVER_PORT": "x"}),
    ConfigCase("recovery-without-history", {"channel": {"without_namespace": {"force_recovery": True}}}),
    ConfigCase("delta-unknown-type", {"channel": {"without_namespace": {"allowed_delta_types": ["xdelta"]}}}),
    ConfigCase("file-wrong-type", {"client": {"ping_interval": 5}}),
    ConfigCase("file-bad-duration", {"client": {"ping_interval": "5 parsecs"}}),
    ConfigCase(
        "postgres-options-while-off",
        {
            **MINIMAL,
            "broker": {"postgres": {"dsn": "postgres://x", "pool_size": 4, "tls": {"enabled": True}}},
        },
    ),
    ConfigCase("postgres-option-wrong-type", {**MINIMAL, "broker": {"postgres": {"pool_size": "abc"}}}),
    ConfigCase("postgres-bad-duration", {**MINIMAL, "controller": {"postgres": {"poll_interval": "ten"}}}),
    ConfigCase("env-postgres-wrong-type", env={"CENTRIFUGO_MAP_BROKER_POSTGRES_POOL_SIZE": "x"}),
    ConfigCase("var-in-string-map", {**MINIMAL, **STATIC_HEADERS}, {"CENTRIFUGO_VAR_TOKEN": "t"}),
    ConfigCase("var-empty-in-string-map", {**MINIMAL, **STATIC_HEADERS}, {"CENTRIFUGO_VAR_TOKEN": ""}),
    ConfigCase("var-missing-in-string-map", {**MINIMAL, **STATIC_HEADERS}),
    ConfigCase(
        "var-missing-in-env-string-map",
        env={"CENTRIFUGO_CLIENT_PROXY_CONNECT_HTTP_STATIC_HEADERS": '{"a": "${CENTRIFUGO_VAR_NOPE}"}'},
    ),
    ConfigCase("redisnats-null", {**MINIMAL, "broker": {"redisnats": None}}),
    ConfigCase("redisnats-wrong-type", {**MINIMAL, "broker": {"redisnats": {"redis": {"db": "x"}}}}),
]


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, id=c.name, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else [])
        for c in CONFIG_CASES
    ],
)
def test_checkconfig(run_both: Callable[..., dict[str, Outcome]], tmp_path: Path, case: ConfigCase) -> None:
    """The same file and environment are accepted by both, or refused by both."""
    path = tmp_path / case.filename
    path.write_text(case.config if isinstance(case.config, str) else json.dumps(case.config))
    done = run_both(["checkconfig", "-c", str(path)], case.env)
    verdicts = {name: {0: "accepted" if p.returncode == 0 else "refused"} for name, p in done.items()}
    for name, p in done.items():
        print(f"--- {name}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    assert_same(f"checkconfig/{case.name}", verdicts["centrifugo"], verdicts["rotary"])


# defaultconfig, defaultenv ------------------------------------------------------------------------


def _key_paths(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield prefix + key
            yield from _key_paths(item, f"{prefix}{key}.")


def _env_names(output: str) -> set[str]:
    return {line.split("=", 1)[0] for line in output.splitlines() if "=" in line}


def _default_keys(run_both: Callable[..., dict[str, Outcome]], tmp_path: Path) -> dict[str, set[str]]:
    done = run_both(["defaultconfig", "-d", "-c", str(tmp_path / "out.json")])
    return {name: set(_key_paths(json.loads(p.stdout))) for name, p in done.items()}


ROTARY_OWN_KEYS = [
    "sockjs",
    "sockjs.enabled",
    "sockjs.handler_prefix",
    "sockjs.heartbeat_delay",
    "sockjs.url",
]
"""rotary's own section: SockJS, which Centrifugo v6 dropped (schema_transports.SockJSConfig)."""


def test_defaultconfig_has_the_same_keys(run_both: Callable[..., dict[str, Outcome]], tmp_path: Path) -> None:
    """Every key, down to each option of the PostgreSQL sections; broker.redisnats is absent from
    both (Centrifugo leaves an unset pointer section out)."""
    keys = _default_keys(run_both, tmp_path)
    assert sorted(keys["centrifugo"] - keys["rotary"]) == []
    assert sorted(keys["rotary"] - keys["centrifugo"]) == ROTARY_OWN_KEYS


def test_defaultenv_has_the_same_variables(run_both: Callable[..., dict[str, Outcome]]) -> None:
    """Every variable, broker.redisnats's included."""
    done = run_both(["defaultenv"])
    names = {n: _env_names(p.stdout) for n, p in done.items()}
    assert sorted(names["centrifugo"] - names["rotary"]) == []
    own = [f"CENTRIFUGO_{key.upper().replace('.', '_')}" for key in ROTARY_OWN_KEYS if "." in key]
    assert sorted(names["rotary"] - names["centrifugo"]) == own


def _unquoted(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


@pytest.mark.parametrize("source", ["centrifugo", "rotary"])
def test_every_default_from_the_environment_is_accepted(
    run_both: Callable[..., dict[str, Outcome]], tmp_path: Path, source: str
) -> None:
    """Every variable of ``<source> defaultenv`` set to the default it prints: both accept it all."""
    listed = run_both(["defaultenv"])[source].stdout
    env = {}
    for line in listed.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.startswith("CENTRIFUGO_"):
            env[name] = _unquoted(value)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(MINIMAL))
    done = run_both(["checkconfig", "-c", str(path)], env)
    verdicts = {name: {0: "accepted" if p.returncode == 0 else "refused"} for name, p in done.items()}
    for name, p in done.items():
        print(f"--- {name}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    assert_same(f"checkconfig/every-default-of-{source}", verdicts["centrifugo"], verdicts["rotary"])
    assert verdicts["rotary"] == {0: "accepted"}


# token commands -----------------------------------------------------------------------------------


def _sign(claims: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


OTHER = "another-secret-of-at-least-32-bytes-long"
TOKEN_CASES = {
    "gentoken": ["gentoken", "-u", "alice"],
    "gentoken-ttl": ["gentoken", "-u", "alice", "-t", "60"],
    "gentoken-anonymous": ["gentoken"],
    "gentoken-no-expiry": ["gentoken", "-u", "alice", "-t", "-1"],
    "gentoken-quiet": ["gentoken", "-u", "alice", "-q"],
    "gensubtoken": ["gensubtoken", "-u", "alice", "-s", "news"],
    "gensubtoken-no-channel": ["gensubtoken", "-u", "alice"],
    "checktoken": ["checktoken", _sign({"sub": "bob", "exp": 4102444800})],
    "checktoken-anonymous": ["checktoken", _sign({"sub": ""})],
    "checktoken-wrong-secret": ["checktoken", _sign({"sub": "bob"}, OTHER)],
    "checktoken-expired": ["checktoken", _sign({"sub": "bob", "exp": 1000})],
    "checktoken-garbage": ["checktoken", "garbage"],
    "checktoken-three-parts": ["checktoken", "a.b.c"],
    "checktoken-channel-claim": ["checktoken", _sign({"sub": "bob", "channel": "news"})],
    "checktoken-none": ["checktoken"],
    "checktoken-two": ["checktoken", "a", "b"],
    "checksubtoken": ["checksubtoken", _sign({"sub": "bob", "channel": "news"})],
    "checksubtoken-no-channel": ["checksubtoken", _sign({"sub": "bob"})],
    "checksubtoken-wrong-secret": ["checksubtoken", _sign({"sub": "bob", "channel": "news"}, OTHER)],
}


def _normalized(output: str) -> str:
    """Tokens become their claim names in order; the program's own name becomes <program>."""

    def claims(match: re.Match[str]) -> str:
        decoded = jwt.decode(match.group(0), options={"verify_signature": False})
        return "<jwt " + ",".join(decoded) + ">"

    output = JWT.sub(claims, output)
    return re.sub(r"\[(centrifugo|rotary) ", "[<program> ", output)


@pytest.mark.parametrize("args", list(TOKEN_CASES.values()), ids=list(TOKEN_CASES))
def test_token_commands(run_both: Callable[..., dict[str, Outcome]], tmp_path: Path, args: list[str]) -> None:
    """Same exit code and same output, but for the tokens' signatures and times."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps(MINIMAL))
    done = run_both([*args, "-c", str(config)])
    outcome = {name: (p.returncode, _normalized(p.stdout)) for name, p in done.items()}
    assert outcome["rotary"] == outcome["centrifugo"]


# configdoc, serve ---------------------------------------------------------------------------------

DOC_RECORD = re.compile(
    r"^(#+) `([^`]+)`\n\nType: `([^`]+)`( object)?(?:\. Default: `([^`]*)`)?(?:\n\nEnv: `([^`]+)`)?\n\n", re.M
)
DOC_ONLY_IN_CENTRIFUGO = ("consumers[].",)
"""Consumer sections rotary keeps as parsed trees (consumers are not built), so it documents them
as one key each."""
WIDER_INTS = {"uint32", "int64", "int32"}


def _doc_records(markdown: str) -> dict[str, dict[str, str]]:
    return {
        m[1]: {"heading": m[0], "complex": m[3], "default": m[4], "env": m[5], "type": m[2]}
        for m in DOC_RECORD.findall(markdown)
    }


def _same_default(reference: str, ours: str, kind: str) -> bool:
    if kind == "Duration" and reference and ours:
        return parse_duration(reference) == parse_duration(ours)
    return reference == ours or (reference in ("0", "false") and ours == "")  # zero values tagged


@pytest.mark.parametrize("args", [[], ["-s", "client"], ["-l", "2", "-s", "rpc"]])
def test_configdoc_markdown(run_both: Callable[..., dict[str, Outcome]], args: list[str]) -> None:
    """Every key Centrifugo documents, with the same heading level, env variable, default and (for
    scalars) type; the prose is each program's own."""
    done = run_both(["configdoc", "-m", *args])
    assert {p.returncode for p in done.values()} == {0}
    reference, ours = (_doc_records(done[name].stdout) for name in ("centrifugo", "rotary"))
    assert len(reference) > (1000 if not args else 10)
    missing = [key for key in reference if key not in ours and not key.startswith(DOC_ONLY_IN_CENTRIFUGO)]
    assert missing == []
    own = [key for key in ROTARY_OWN_KEYS if not args]  # the sections the args pick hold none of them
    assert sorted(key for key in ours if key not in reference) == own
    for key, ref in reference.items():
        if key not in ours:
            continue
        mine = ours[key]
        assert (key, mine["heading"], mine["env"]) == (key, ref["heading"], ref["env"])
        assert _same_default(ref["default"], mine["default"], ref["type"]), (key, ref, mine)
        if not ref["complex"] and ref["type"] not in WIDER_INTS and "DeltaType" not in ref["type"]:
            assert (key, mine["type"]) == (key, ref["type"])


def _serve(command: list[str], port: int, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*command, "-p", str(port), "-a", "127.0.0.1"], cwd=cwd, stdout=subprocess.PIPE, text=True
    )


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def _wait_listening(process: subprocess.Popen[str], port: int) -> str:
    assert process.stdout is not None
    first_line = process.stdout.readline()
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return first_line
        assert process.poll() is None, first_line
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def test_serve_answers_like_go_file_server(tmp_path: Path) -> None:
    """Same first line, same index page, same directory listing, same file, same 404."""
    site = tmp_path / "site"
    (site / "sub").mkdir(parents=True)
    (site / "index.html").write_text("<p>index</p>\n")
    (site / "sub" / "a.txt").write_text("a\n")
    (site / "sub" / "b").mkdir()
    answers = {}
    for name, command in (("centrifugo", [centrifugo_binary()]), ("rotary", [str(ROTARY)])):
        port = free_port()
        with _serve([*command, "serve", "-d", "site"], port, tmp_path) as process:
            try:
                line = _wait_listening(process, port).replace(str(port), "<port>")
                answers[name] = [line, *(_get(port, path) for path in ("/", "/sub/", "/sub/a.txt", "/nope"))]
            finally:
                process.terminate()
    assert answers["rotary"] == answers["centrifugo"]
    assert answers["rotary"][0] == "start serving site on 127.0.0.1:<port>\n"


def test_configdoc_page_embeds_the_records(tmp_path: Path) -> None:
    """Without --markdown the documentation is a web page on --port, its records as JSON."""
    port = free_port()
    command = [str(ROTARY), "configdoc", "-p", str(port), "-s", "client"]
    with subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, text=True) as process:
        try:
            _wait_listening(process, port)
            status, page = _get(port, "/")
        finally:
            process.terminate()
    assert status == 200
    found = re.search(r'<script type="application/json" id="config-docs">(.*?)</script>', page, re.S)
    assert found is not None
    records = json.loads(found.group(1))
    assert [r["field"] for r in records] == ["client"]
    token = next(r for r in records[0]["children"] if r["field"] == "client.token")
    hmac = next(r for r in token["children"] if r["name"] == "hmac_secret_key")
    assert (hmac["type"], hmac["level"], hmac["is_complex_type"]) == ("string", 3, False)
    assert hmac["comment"]
