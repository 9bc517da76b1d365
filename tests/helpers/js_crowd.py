"""A crowd of npm ``centrifuge`` (centrifuge-js) clients in Node processes: the test's side.

The processes run tests/helpers/js_crowd.mjs, which speaks the commands of helpers.sdk_crowd and
answers them the same way, except for ``report``: a Node process sends its clients' subscription
events as they came, and they are checked here with the Python crowd's code (``checked``:
``assert_no_silent_loss``, every resubscription ``recovered: true``), so that both crowds are held
to one definition of "nothing lost". The report then has the Python crowd's shape.

Node's clients cost the crowd far less CPU than centrifuge-python's (one event loop of the SDK and
``ws`` per process, no asyncio task per connection), which is what lets a 10,000-client storm run
on the same two cores as the node it storms.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.cluster import SECRET
from helpers.sdk_crowd import SdkCrowds, Seen, checked, stuck_as

SCRIPT = Path(__file__).with_name("js_crowd.mjs")


@dataclass(frozen=True)
class Pub:
    data: dict[str, Any]


@dataclass(frozen=True)
class Publication:
    """``on_publication``: what ``assert_no_silent_loss`` reads of the Python SDK's context."""

    pub: Pub


@dataclass(frozen=True)
class Subscribed:
    was_recovering: bool
    recovered: bool


@dataclass(frozen=True)
class Coded:
    """``on_subscribing`` and ``on_unsubscribed``: a code and a reason."""

    code: int
    reason: str


@dataclass(frozen=True)
class Failed:
    kind: str
    message: str


def context(event: list[Any]) -> tuple[str, Any]:
    """One event of the Node process (``[name, ...fields]``) as the Python crowd keeps it."""
    name, *fields = event
    if name == "on_publication":
        return name, Publication(Pub({"seq": fields[0]}))
    if name == "on_subscribed":
        return name, Subscribed(bool(fields[0]), bool(fields[1]))
    if name == "on_error":
        return name, Failed(*fields)
    return name, Coded(*fields)


def python_options(options: dict[str, Any]) -> dict[str, Any]:
    """centrifuge-python's ``timeout`` and ``max_reconnect_delay`` (seconds) as centrifuge-js's
    ``timeout`` and ``maxReconnectDelay`` (milliseconds); the SDK's defaults for the rest."""
    names = {"timeout": "timeout", "max_reconnect_delay": "maxReconnectDelay"}
    return {names[name]: round(value * 1000) for name, value in options.items()}


class JsCrowds(SdkCrowds):
    """Node processes sharing a crowd of centrifuge-js clients; the interface of ``SdkCrowds``."""

    @classmethod
    async def start(
        cls, url: str, channel: str, clients: int, per_process: int, nice: int = 0, **settings: Any
    ) -> SdkCrowds:
        options = python_options(settings.pop("client_options", {}))
        return await super().start(
            url, channel, clients, per_process, nice, secret=SECRET, clientOptions=options, **settings
        )

    @staticmethod
    def command(arguments: dict[str, Any]) -> list[str]:
        node = shutil.which("node")
        assert node, "no `node` binary"
        return [node, str(SCRIPT), json.dumps(arguments)]

    async def ask(self, command: str) -> list[dict[str, Any]]:
        answers = await super().ask(command)
        if command.startswith("report "):
            accepted = json.loads(command.split(maxsplit=2)[2])
            return [report(answer, accepted) for answer in answers]
        return answers


def report(answer: dict[str, Any], accepted: list[int]) -> dict[str, Any]:
    """A Node process's report in the Python crowd's shape, its clients checked here."""
    clients: list[tuple[str, Seen, Seen]] = []
    stuck: dict[str, int] = {}
    for member in answer.pop("members"):
        seen = [context(event) for event in member["events"]]
        clients.append((f"user{member['index']}", seen, seen[member["mark"] :]))
        if member["waiting"]:
            key = stuck_as(member["state"], seen)
            stuck[key] = stuck.get(key, 0) + 1
    return {**answer, **checked(clients, accepted), "stuck": stuck}
