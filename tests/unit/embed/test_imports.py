"""`import rotary` stays light: a library must not drag the server's optional parts into its host."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("grpc", "aioquic", "prometheus_client", "redis", "nats", "yaml", "jwt", "cryptography")


def test_import_rotary_imports_no_optional_or_server_dependency() -> None:
    probe = (
        "import sys, rotary, rotary.mount, rotary.testing\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_public_names_are_exported() -> None:
    import rotary
    import rotary.mount
    import rotary.testing

    for module in (rotary, rotary.mount, rotary.testing):
        assert all(hasattr(module, name) for name in module.__all__)
    assert "Node" in rotary.__all__ and "TestClient" in rotary.testing.__all__
    assert {"asgi_app", "aiohttp_app"} <= set(rotary.mount.__all__)
