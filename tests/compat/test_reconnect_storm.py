"""A reconnect storm: a node dies under its clients and comes back; they all return at once.

Two nodes share Redis. Every client (an official SDK: centrifuge-python, or centrifuge-js in Node)
is connected to node A and subscribed with recovery to one channel. A is killed (no goodbye),
publications keep being accepted through node B meanwhile, and A starts again on the same port.
The clients reconnect together, and ``client.connection_rate_limit`` (smaller than the crowd) turns
the excess away with 503 until the SDKs' backoff brings them back. Every client ends up resubscribed
with ``recovered: true`` and every publication, once and in order: the storm is absorbed and nothing
is lost.

The clients live in processes of their own (tests/helpers/sdk_crowd.py for centrifuge-python,
tests/helpers/js_crowd.mjs for centrifuge-js; CROWD_SIZES clients each), which record what their
clients got; one check (``helpers.sdk_crowd.checked``) judges both. The crowd is built before the
kill at whatever pace the machine allows, and only the storm after the restart is timed. The
centrifuge-js crowd costs a third to a half of the Python one's CPU per client in a storm, which is
what lets the kit's 10,000-client storm share two cores with the node it storms; the SDK options
the test sets are the same for both (the suite's backoff cap, the kit's SDK defaults).

The channel's namespace has presence and recovery but no join and leave messages: with them,
every subscribe is pushed to every subscriber of the channel, about N² pushes when a crowd of N
subscribes and resubscribes (4 million for 2,000 clients), which is what made the crowds of the
first large runs grow by megabytes per client and is no part of a reconnect storm.

The suite runs STORM_CLIENTS (40) clients of each SDK, a quarter of them beyond the bucket; the
reliability kit runs more (``RELIABILITY_STORM_CLIENTS``, with ``RELIABILITY_STORM_TURNED_AWAY``
beyond the bucket) of one SDK (``RELIABILITY_STORM_SDK``: ``js`` or ``python``). With
``RELIABILITY_RESULTS=<file>`` the figures are written there as JSON.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import itertools
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from helpers import redis_servers
from helpers.centrifugo import CentrifugoNode
from helpers.cluster import CHAT_NAMESPACE, RotaryNode, redis_config, rotary_nodes
from helpers.env import raise_open_files
from helpers.js_crowd import JsCrowds
from helpers.sdk_crowd import SdkCrowds

pytestmark = pytest.mark.compat

STORM_CLIENTS = int(os.environ.get("RELIABILITY_STORM_CLIENTS", "40"))
TURNED_AWAY = int(os.environ.get("RELIABILITY_STORM_TURNED_AWAY", str(STORM_CLIENTS // 4)))
"""Clients beyond the bucket: turned away with 503, they come back by the SDK's backoff as the bucket
regains a token a second (Centrifugo's rate), so they take about this many seconds."""
RATE_LIMIT = max(1, STORM_CLIENTS - TURNED_AWAY)
CROWDS = {"python": SdkCrowds, "js": JsCrowds}
"""The SDK of the crowd: centrifuge-python (helpers.sdk_crowd) or centrifuge-js (helpers.js_crowd)."""
SDKS = [os.environ["RELIABILITY_STORM_SDK"]] if os.environ.get("RELIABILITY_STORM_SDK") else list(CROWDS)
"""The crowds the test runs with: both in the suite, the one ``RELIABILITY_STORM_SDK`` names in the kit."""
SERVERS = {"rotary": RotaryNode, "centrifugo": CentrifugoNode}
SERVER = os.environ.get("RELIABILITY_STORM_SERVER", "rotary")
"""The nodes' server: rotary, or (in the kit, for comparison) Centrifugo itself with the same config."""
CROWD_SIZES = {"python": 2000, "js": 5000}
"""Clients per crowd process (at most; ``RELIABILITY_STORM_CROWD_SIZE`` overrides): one event loop
stays responsive with this many SDK clients; fewer per process share the crowd's CPU more evenly
between its clients, and more Node processes than cores only share the same cores."""
MAX_RECONNECT_DELAY = float(os.environ.get("RELIABILITY_STORM_MAX_RECONNECT_DELAY", "0.5"))
"""The cap of the SDK's reconnect backoff (full jitter from 0.1 s for centrifuge-python, 0.5 s for
centrifuge-js, doubling per failed attempt).
The suite's 0.5 s (tests/compat/conftest.py) brings the turned-away clients back as soon as a token
is there; the SDK's own default is 20 s, which spreads a large crowd's attempts over the time the
node needs to take them."""
CROWD_NICE = int(os.environ.get("RELIABILITY_STORM_CROWD_NICE", "0"))
"""How much the crowd processes lower their CPU priority (``nice``): the kit's large storms give the
node its CPU first, as clients on machines of their own would."""
CLIENT_TIMEOUT = float(os.environ.get("RELIABILITY_STORM_CLIENT_TIMEOUT", "5"))
"""The SDK's timeout for a handshake, a connect or a subscribe; 5 s is its default."""
CLIENT_OPTIONS = {"timeout": CLIENT_TIMEOUT, "max_reconnect_delay": MAX_RECONNECT_DELAY}
PROGRESS_EVERY = 10.0
PUBLISHED_BEFORE = 5
PUBLISHED_WHILE_DOWN = 10
STORM_TIMEOUT = 3 * TURNED_AWAY + STORM_CLIENTS // 20 + 60
"""Seconds the storm may take: an upper bound, most of it for the turned-away clients (one a
second at best)."""
HISTORY_TTL = STORM_TIMEOUT + 120
"""Seconds the channel keeps its history: longer than the storm may take. With the suite's 300 s a
500-client storm outlived the history, and the clients that came back after it were rightly told
``recovered: false`` (the publications were gone), which is not what a storm test measures."""
POLL = 0.25
FIRST_WAVE = 10.0
"""Seconds after the restart over which the CPU spent is split between node A, the crowd and Redis:
the first wave of reconnects, in which each handshake has the SDK's timeout to be answered."""


def storm_config(redis_address: str) -> dict[str, Any]:
    """The nodes' config: the suite's Redis config with a ``storm`` namespace (the ``chat`` one
    without join and leave messages)."""
    config = redis_config(redis_address, redis_servers.unique_prefix())
    namespace = copy.deepcopy(CHAT_NAMESPACE)
    del namespace["join_leave"], namespace["force_push_join_leave"]
    namespace.update(name="storm", history_ttl=f"{HISTORY_TTL}s")
    config["channel"]["namespaces"].append(namespace)
    return config


def process_figures(pid: int) -> tuple[float, float]:
    """CPU seconds (user and system) and RSS in MiB of process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return cpu, rss


def quantiles(times: list[float]) -> list[float]:
    ordered = sorted(times)
    return [round(ordered[int(q * (len(ordered) - 1))], 1) for q in (0.5, 0.9, 1.0)] if ordered else []


def merged_figures(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The crowd processes' reports as one: where the storm's time went (the rate limit's 503s,
    connect timeouts of a busy node, the SDK's backoff) and what the crowd cost."""
    failures: collections.Counter[str] = collections.Counter()
    drops: collections.Counter[str] = collections.Counter()
    connected: list[float] = []
    done: list[float] = []
    for report in reports:
        failures.update(report["failed_connect_attempts_by_error"])
        drops.update(report["connection_ends_by_code"])
        connected.extend(report["connected_s"])
        done.extend(report["done_s"])
    clients = sum(report["clients"] for report in reports)
    rss = sum(report["rss_mib"] for report in reports)
    empty = sum(report["rss_mib_empty"] for report in reports)
    return {
        "reconnected": len(connected),
        "reconnected_within_s": {
            str(s): sum(1 for t in connected if t <= s) for s in (5, 10, 30, 60, 120, 300)
        },
        "reconnect_seconds_p50_p90_max": quantiles(connected),
        "recovered_seconds_p50_p90_max": quantiles(done),
        "failed_connect_attempts": sum(failures.values()),
        "failed_connect_attempts_by_error": dict(failures.most_common(6)),
        "connection_ends_by_code": dict(drops.most_common(6)),
        "told": sum(report["told"] for report in reports),
        "publications_missing_at_end": sum(report["missing"] for report in reports),
        "not_held": sum(report["not_held"] for report in reports),
        "not_held_first": [line for report in reports for line in report["not_held_first"]][:5],
        "joins_and_leaves_received": sum(report["joins_and_leaves"] for report in reports),
        "crowd_processes": len(reports),
        "crowd_built_s": max(report["built_s"] for report in reports),
        "crowd_rss_mib": round(rss),
        "crowd_rss_kib_per_client": round((rss - empty) * 1024 / clients),
        "crowd_cpu_s_build": round(sum(report["cpu_s_build"] for report in reports), 1),
        "crowd_cpu_s_storm": round(sum(report["cpu_s_storm"] for report in reports), 1),
    }


def listen_overflows() -> int:
    """The machine's count of connections the kernel dropped for a full accept queue (TcpExt
    ListenOverflows): a dropped SYN is sent again after 1 s, then 3 s, then 7 s, so a handshake can
    outlive the SDK's 5 s before the node has seen it. Machine-wide: other processes count too."""
    lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines()]
    names, values = next(pair for pair in itertools.pairwise(lines) if pair[0][0] == "TcpExt:")
    return int(values[names.index("ListenOverflows")])


def redis_pid(setup: redis_servers.RedisSetup) -> int:
    process = setup.processes[0].process
    assert process is not None
    return process.pid


class CpuSplit:
    """The CPU seconds node A, the crowd and Redis spent in the storm's first FIRST_WAVE seconds, and
    the connections the kernel dropped meanwhile (``listen_overflows``)."""

    def __init__(self, node_pid: int, redis_pid: int) -> None:
        self._pids = {"node": node_pid, "redis": redis_pid}
        self._start: dict[str, float] = {}
        self.first_wave: dict[str, float] = {}

    def note(self, answers: list[dict[str, Any]], since_restart: float) -> None:
        """Called at each poll with the crowd's answers (``cpu_s``: its CPU since the mark)."""
        if self.first_wave or (self._start and since_restart < FIRST_WAVE):
            return
        now = {name: process_figures(pid)[0] for name, pid in self._pids.items()}
        now["crowd"] = sum(answer["cpu_s"] for answer in answers)
        now["listen_overflows"] = listen_overflows()
        if not self._start:
            self._start = now
        else:
            self.first_wave = {name: round(now[name] - self._start[name], 1) for name in now}


async def publish(node: RotaryNode, channel: str, seqs: range, accepted: list[int]) -> None:
    for seq in seqs:
        await node.api("publish", {"channel": channel, "data": {"seq": seq}})
        accepted.append(seq)


@pytest.mark.parametrize("sdk", SDKS)
async def test_clients_of_a_dead_node_all_come_back_and_recover(
    tmp_path: Path, sdk: str, request: pytest.FixtureRequest
) -> None:
    if sdk == "js":
        request.getfixturevalue("node")  # skips without node and the npm packages
    raise_open_files(STORM_CLIENTS + 1024)
    per_process = int(os.environ.get("RELIABILITY_STORM_CROWD_SIZE", CROWD_SIZES[sdk]))
    setup = redis_servers.start_standalone()
    config = storm_config(setup.processes[0].address)
    channel = "storm:" + uuid.uuid4().hex[:12]
    load_before = os.getloadavg()
    try:
        with rotary_nodes(tmp_path, config, 2, SERVERS[SERVER]) as (node_a, node_b):
            crowds = await CROWDS[sdk].start(
                node_a.ws_url, channel, STORM_CLIENTS, per_process, CROWD_NICE, client_options=CLIENT_OPTIONS
            )
            try:
                built = await crowds.ask("join")
                accepted: list[int] = []
                await publish(node_b, channel, range(PUBLISHED_BEFORE), accepted)
                last = PUBLISHED_BEFORE + PUBLISHED_WHILE_DOWN - 1
                await crowds.ask(f"mark {last}")
                assert node_a.process is not None
                _, server_rss_before = process_figures(node_a.process.pid)
                node_a.kill()
                await publish(node_b, channel, range(PUBLISHED_BEFORE, last + 1), accepted)
                node_a.config = {
                    **config,
                    "client": {**config["client"], "connection_rate_limit": RATE_LIMIT},
                }
                node_a.start()
                restarted = time.monotonic()
                overflows_at_start = listen_overflows()
                server_cpu_at_start, _ = process_figures(node_a.process.pid)
                cpu_at = CpuSplit(node_a.process.pid, redis_pid(setup))

                deadline = restarted + STORM_TIMEOUT
                told_at = restarted
                while True:
                    answers = await crowds.ask("progress")
                    cpu_at.note(answers, time.monotonic() - restarted)
                    done = sum(answer["done"] for answer in answers)
                    if done == STORM_CLIENTS or time.monotonic() > deadline:
                        break
                    if time.monotonic() - told_at > PROGRESS_EVERY:  # shown when the test fails
                        told_at = time.monotonic()
                        connected = sum(answer["connected"] for answer in answers)
                        print(f"{told_at - restarted:.0f} s: {connected} connected again, {done} done")
                    await asyncio.sleep(POLL)
                seconds = time.monotonic() - restarted
                server_cpu, server_rss = process_figures(node_a.process.pid)
                reports = await crowds.ask(f"report {restarted} {json.dumps(accepted)}")
            finally:
                await crowds.stop()
            figures = merged_figures(reports)
            figures.update(
                crowd_rss_kib_per_client_built=round(
                    sum(answer["rss_mib"] - answer["rss_mib_empty"] for answer in built)
                    * 1024
                    / STORM_CLIENTS
                ),
                server_rss_mib_before_kill_after_storm=[round(server_rss_before), round(server_rss)],
                server_cpu_s_storm=round(server_cpu - server_cpu_at_start, 1),
                listen_overflows_storm=listen_overflows() - overflows_at_start,
                cpu_s_first_10_s=cpu_at.first_wave,
                crowd_loop_delay_ms_max=max(
                    (r["loop_delay_ms_max"] for r in reports if "loop_delay_ms_max" in r), default=None
                ),
                load_average_before_after=[round(load_before[0], 2), round(os.getloadavg()[0], 2)],
            )
            print(f"storm of {STORM_CLIENTS} {sdk} clients: {seconds:.1f} s to all done; {figures}")
            failure = ""
            if done < STORM_CLIENTS:
                stuck: collections.Counter[str] = collections.Counter()
                for report in reports:
                    stuck.update(report["stuck"])
                failure = (
                    f"not within {STORM_TIMEOUT}s: every client recovered; {STORM_CLIENTS - done} still "
                    f"waiting: {dict(stuck)}"
                )
            elif figures["not_held"]:
                failure = f"{figures['not_held']} clients did not hold: {figures['not_held_first']}"
            elif not (node_a.alive and node_b.alive):
                failure = "a node died"
            record(sdk, seconds, figures, failure)
            assert not failure, f"{failure}; {figures}"
    finally:
        setup.stop()


def record(sdk: str, seconds: float, figures: dict[str, Any], failure: str) -> None:
    """Writes the figures to ``RELIABILITY_RESULTS`` when the kit asked for them; a storm that did
    not hold leaves its figures too, and why."""
    results = os.environ.get("RELIABILITY_RESULTS")
    if not results:
        return
    Path(results).write_text(
        json.dumps(
            {
                "clients": STORM_CLIENTS,
                "sdk": f"centrifuge-{sdk}",
                "server": SERVER,
                "connection_rate_limit": RATE_LIMIT,
                "turned_away_at_least": TURNED_AWAY,
                "max_reconnect_delay_s": MAX_RECONNECT_DELAY,
                "client_timeout_s": CLIENT_OPTIONS["timeout"],
                "seconds_to_all_recovered": round(seconds, 1) if not failure else None,
                "seconds_waited": round(seconds, 1),
                "published_while_down": PUBLISHED_WHILE_DOWN,
                "crowd_nice": CROWD_NICE,
                "lost": figures["publications_missing_at_end"] if not failure else None,
                **figures,
                **({"not_held_because": failure[:2000]} if failure else {}),
            }
        )
    )
