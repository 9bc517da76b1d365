"""The documentation site (mkdocs.yml, docs/) builds with every warning an error, and its generated
pages follow the code: every refused key of rotary.server.config.unbuilt and every config key of
the schema appear. mkdocs comes with the test extra; without it the test skips (fails under CI)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.env import IN_CI

from rotary.server.config.doc import document
from rotary.server.config.unbuilt import UNBUILT

REPO = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 300


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("mkdocs") is None:
        message = "mkdocs is not installed (pip install -e '.[docs]')"
        if IN_CI:
            pytest.fail(message + " (CI must install it)")
        pytest.skip(message)
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", REPO / "mkdocs.yml", "-d", out],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_every_page_is_built(site: Path) -> None:
    for page in (
        "getting-started",
        "compatibility",
        "refused-keys",
        "config-reference",
        "embedding",
        "fastapi",
        "aiohttp",
        "api-reference",
    ):
        assert (site / page / "index.html").is_file(), page
    assert (site / "index.html").is_file()


def test_refused_keys_page_lists_the_unbuilt_table(site: Path) -> None:
    page = (site / "refused-keys" / "index.html").read_text()
    assert [entry.path for entry in UNBUILT if f"<code>{entry.path}</code>" not in page] == []


def test_config_reference_documents_every_top_level_key(site: Path) -> None:
    page = (site / "config-reference" / "index.html").read_text()
    assert [doc.field for doc in document() if f"<code>{doc.field}</code>" not in page] == []


def test_api_reference_documents_every_public_name(site: Path) -> None:
    import rotary
    import rotary.mount
    import rotary.testing

    page = (site / "api-reference" / "index.html").read_text()
    modules = (rotary, rotary.mount, rotary.testing)
    public = [f"{module.__name__}.{name}" for module in modules for name in module.__all__]
    assert [
        name for name in public if not name.endswith("__version__") and f"<code>{name}</code>" not in page
    ] == []
