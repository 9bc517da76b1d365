"""Testing an application's hooks without sockets: :class:`TestClient` and a pytest plugin.

``TestClient`` speaks Centrifugo's client protocol to a :class:`rotary.Node` in the same process.
The pytest plugin (installed with rotary, registered as the ``rotary`` pytest11 entry point) adds
the ``rotary_node`` and ``rotary_client`` fixtures when pytest-asyncio is installed. This module is
public API, like ``rotary``.
"""

from rotary.embed.testclient import Closed, Connected, Push, Subscribed, TestClient, settled

__all__ = ["Closed", "Connected", "Push", "Subscribed", "TestClient", "settled"]
