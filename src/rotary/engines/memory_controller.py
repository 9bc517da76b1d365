"""The memory controller: inter-node messages when there is only this node.

A message for all nodes, or for this node by id, reaches this node's handler at once; a message
for another node id goes nowhere, since no other node shares this process.
See https://centrifugal.dev/docs/server/engines#memory-engine.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["MemoryController"]


class MemoryController:
    """A single node's Controller: ``publish_control`` delivers to itself unless ``to_node`` is another."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self._handler: Callable[[bytes], None] | None = None

    async def start(self, handler: Callable[[bytes], None]) -> None:
        self._handler = handler

    async def publish_control(self, data: bytes, to_node: str = "") -> None:
        if self._handler is not None and to_node in ("", self.node_id):
            self._handler(data)

    async def close(self) -> None:
        self._handler = None
