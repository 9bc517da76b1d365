"""The layers import one way only (ARCHITECTURE.md, "Dependency rule"):
protocol <- session <- engines <- node <- transports <- embed <- server.

embed is the public library API's implementation (re-exported by ``rotary`` and ``rotary.testing``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "rotary"
ORDER = ["protocol", "session", "engines", "node", "transports", "embed", "server"]
NO_IO = {"protocol", "session"}
IO_MODULES = ("asyncio", "aiohttp", "redis", "grpc", "nats")


def _imports(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


@pytest.mark.parametrize("layer", ORDER)
def test_layer_imports_only_layers_below(layer: str) -> None:
    allowed = set(ORDER[: ORDER.index(layer) + 1])
    for path in (SRC / layer).rglob("*.py"):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "rotary" and len(parts) > 1 and parts[1] in ORDER:
                assert parts[1] in allowed, f"{path.relative_to(SRC)} imports {name}"
            if layer in NO_IO:
                assert parts[0] not in IO_MODULES, f"{path.relative_to(SRC)} imports {name}"
