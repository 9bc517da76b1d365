"""rotary as users install it: the wheel and sdist through pipx, the .deb through dpkg, the image
through Docker. Each artifact is built once per session and the installed command must answer:
``rotary version``, ``checkconfig`` on the config it ships or generates, and ``/health`` from a
started server. See https://centrifugal.dev/docs/getting-started/installation

These tests take minutes (building a virtual environment with every dependency, twice), so they
carry the ``packaging`` marker: ``pytest -m "not packaging"`` leaves them out.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.env import IN_CI, START_LIMIT, free_port, require_binary

from rotary import __version__

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[2]
PYTHON = Path(sys.executable)
BUILD_TIMEOUT = 1200
START_TIMEOUT = START_LIMIT
DEB_USER = "rotary"


def run(*args: str | Path, timeout: float = BUILD_TIMEOUT, **options: Any) -> str:
    """Runs a command that must succeed; its output is shown when it does not."""
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False, **options
    )
    assert done.returncode == 0, f"{args} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def as_user(name: str) -> dict[str, Any]:
    """subprocess options running a command as ``name`` with its own group only (no root groups)."""
    return {"user": name, "group": name, "extra_groups": []}


def answers_health(command: list[str], cwd: Path, **options: Any) -> None:
    """Starts ``command`` with the health endpoint on a free port and waits for ``GET /health``."""
    port = free_port()
    full = [*command, "--health.enabled", "-a", "127.0.0.1", "-p", str(port)]
    with subprocess.Popen(
        full, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **options
    ) as server:
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                        assert (response.status, response.read()) == (200, b"{}")
                        break
                except OSError:
                    assert server.poll() is None, f"rotary exited with {server.returncode}"
                    assert time.monotonic() < deadline, "no /health answer"
                    time.sleep(0.2)
        finally:
            server.terminate()
            output, _ = server.communicate(timeout=START_TIMEOUT)
        assert server.returncode == 0, output
        assert "Traceback" not in output


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist, and the wheel that ``python -m build`` makes from that sdist alone; built from a copy
    of the checkout's files so that no build leftovers (``src/rotary.egg-info``) land in it."""
    source = tmp_path_factory.mktemp("source")
    listed = run("git", "-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in listed.split("\0"):
        if name and (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    run(PYTHON, "-m", "build", "--outdir", out, source)
    return out


def only(directory: Path, pattern: str) -> Path:
    found = sorted(directory.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_wheel_holds_every_package_file(dist: Path) -> None:
    """Every module, Lua script and marker file of src/rotary reached the wheel through the sdist:
    nothing the package needs (generated protobuf code included) is left out."""
    tracked = run("git", "-C", REPO, "ls-files", "src/rotary").split()
    wanted = {
        name.removeprefix("src/") for name in tracked if name.endswith((".py", ".pyi", ".lua", "py.typed"))
    }
    in_wheel = set(zipfile.ZipFile(only(dist, "*.whl")).namelist())
    assert sorted(wanted - in_wheel) == []
    assert any("/_pb/" in name for name in in_wheel)
    assert only(dist, "rotary-*.tar.gz").name == "rotary-0.1.0.tar.gz"


def test_pipx_installs_the_wheel(dist: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(tmp_path / "bin")}
    env.pop("VIRTUAL_ENV", None)
    run(PYTHON, "-m", "pipx", "install", "--python", PYTHON, only(dist, "*.whl"), env=env)
    rotary = tmp_path / "bin" / "rotary"
    assert run(rotary, "version").startswith("rotary v0.1.0 (Python version: ")
    run(rotary, "genconfig", cwd=tmp_path)
    run(rotary, "checkconfig", cwd=tmp_path)
    answers_health([str(rotary)], tmp_path)


def test_library_installs_beside_fastapi_and_django(dist: Path, tmp_path: Path) -> None:
    """rotary embedded in a web application: the plain wheel (no extra) resolves beside current
    FastAPI and Django without a conflict, serves the default config, refuses Redis and GRPC configs
    by their keys, naming the extra to install, without a traceback, and imports as a library."""
    venv = tmp_path / "venv"
    run(PYTHON, "-m", "venv", venv)
    pip = [venv / "bin" / "python", "-m", "pip", "--disable-pip-version-check"]
    run(*pip, "install", "--quiet", only(dist, "*.whl"), "fastapi", "django")
    run(*pip, "check")
    rotary = venv / "bin" / "rotary"
    run(rotary, "genconfig", cwd=tmp_path)
    run(rotary, "checkconfig", cwd=tmp_path)
    (tmp_path / "redis.json").write_text('{"engine": {"type": "redis"}}')
    refused = subprocess.run(
        [rotary, "checkconfig", "-c", "redis.json"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert refused.returncode != 0
    assert "engine.type: needs the optional dependencies of rotary[redis]" in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
    (tmp_path / "grpc.json").write_text('{"grpc_api": {"enabled": true}}')
    refused = subprocess.run(
        [rotary, "checkconfig", "-c", "grpc.json"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    needs_grpc = "grpc_api.enabled: needs the optional dependencies of rotary[grpc]"
    assert needs_grpc in refused.stdout + refused.stderr
    probe = "import rotary, rotary.testing; print(rotary.__version__, rotary.Node.__name__)"
    library = run(venv / "bin" / "python", "-c", probe)
    assert library.split() == [__version__, "Node"]


# The Debian package ------------------------------------------------------------------------------


def _require_root_dpkg() -> None:
    require_binary("dpkg-deb")
    if os.geteuid() != 0:
        message = "installing the .deb needs root"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    status = subprocess.run(["dpkg-query", "-W", "rotary"], capture_output=True, check=False)
    if status.returncode == 0:
        pytest.skip("a rotary package is installed on this machine already; not replacing it")


@pytest.fixture(scope="session")
def installed_deb(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The .deb built by packaging/deb/build from the session's wheel, installed on this machine
    with dpkg and purged afterwards (with the user it created, if there was none before)."""
    _require_root_dpkg()
    out = tmp_path_factory.mktemp("deb")
    deb = Path(
        run(REPO / "packaging" / "deb" / "build", "--wheel", only(dist, "*.whl"), "--out", out).strip()
    )
    user_existed = _user_exists(DEB_USER)
    try:
        run("dpkg", "-i", deb)
        yield deb
    finally:
        subprocess.run(["dpkg", "--purge", "rotary"], capture_output=True, check=False)
        if not user_existed and _user_exists(DEB_USER):
            subprocess.run(["deluser", "--system", "--quiet", DEB_USER], capture_output=True, check=False)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def test_deb_installs_a_working_server(installed_deb: Path) -> None:
    fields = run("dpkg-deb", "--field", installed_deb, "Package", "Depends")
    assert "Package: rotary" in fields
    assert "adduser" in fields
    assert Path("/opt/rotary/bin/python").resolve().is_relative_to("/usr")  # Debian's Python
    config = Path("/etc/rotary/config.json")
    assert config.stat().st_mode & 0o777 == 0o640
    assert pwd.getpwuid(Path("/var/lib/rotary").stat().st_uid).pw_name == DEB_USER
    assert pwd.getpwnam(DEB_USER).pw_uid < 1000  # a system user
    home = Path("/var/lib/rotary")
    assert run("/usr/bin/rotary", "version", cwd=home, **as_user(DEB_USER)).startswith("rotary v")
    run("/usr/bin/rotary", "checkconfig", "--config", config, cwd=home, **as_user(DEB_USER))
    answers_health(["/usr/bin/rotary", "--config", str(config)], home, **as_user(DEB_USER))


def test_deb_systemd_unit(installed_deb: Path) -> None:
    unit = Path("/lib/systemd/system/rotary.service")
    text = unit.read_text()
    for line in (
        "User=rotary",
        "LimitNOFILE=65536",
        "ExecStartPre=/usr/bin/rotary checkconfig --config ${CONFIG}",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ):
        assert line in text.splitlines(), line
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        message = "systemd-analyze is not installed (Debian package systemd)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr


# The container image -----------------------------------------------------------------------------


def test_docker_image_builds_and_is_healthy() -> None:
    docker = shutil.which("docker")
    info = (
        subprocess.run([docker or "docker", "info"], capture_output=True, text=True, check=False)
        if docker
        else None
    )
    if info is None or info.returncode != 0:
        # No engine can run here (no daemon socket): a skip even under CI, which has none either.
        pytest.skip("no Docker engine: `docker info` fails" if docker else "docker is not installed")
    tag = f"rotary-test:{os.getpid()}"
    run("docker", "build", "-t", tag, REPO)
    try:
        user = run("docker", "image", "inspect", "--format", "{{.Config.User}}", tag).strip()
        assert user not in ("", "root", "0")
        name = f"rotary-test-{os.getpid()}"
        run("docker", "run", "-d", "--name", name, tag)
        try:
            deadline = time.monotonic() + 60
            while (
                status := run("docker", "inspect", "--format", "{{.State.Health.Status}}", name).strip()
            ) != ("healthy"):
                assert status == "starting" and time.monotonic() < deadline, status
                time.sleep(1)
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)
