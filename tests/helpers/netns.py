"""A network namespace joined to this one by a veth pair: a link that tests can cut or slow.

A server started inside the namespace (``NetworkLink.command``) is reached only over the pair, at
``inner_address``; bringing the namespace's end down partitions it from everything on this side,
and a qdisc on the host end (``tc netem``, or a token bucket where the kernel lacks netem) delays
and drops what crosses. Every name is unique per link (tests run
in parallel with others on one machine) and everything created is removed on exit, also when the
test fails: deleting the namespace deletes the pair and the qdisc with it.

Namespaces need root and iproute2. Without them the test is skipped with the reason printed; under
CI=true it fails when the machine should allow them (CI runs as root on this image), as the
helpers for missing binaries do.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from helpers.env import IN_CI, require_binary


class LinkError(RuntimeError):
    """An ``ip`` or ``tc`` command failed."""


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LinkError(f"{' '.join(command)}: {done.stderr.strip() or done.returncode}")


@dataclass(frozen=True)
class NetworkLink:
    namespace: str
    host_device: str
    inner_device: str
    host_address: str
    inner_address: str

    def command(self, *args: str) -> list[str]:
        """``args`` as a command line that runs inside the namespace."""
        return ["ip", "netns", "exec", self.namespace, *args]

    def cut(self) -> None:
        """Takes the namespace's end down: nothing crosses. The host end stays up, so its route
        (marked linkdown) keeps this side's packets on the pair, where they are dropped."""
        _run(*self.command("ip", "link", "set", self.inner_device, "down"))

    def restore(self) -> None:
        _run(*self.command("ip", "link", "set", self.inner_device, "up"))

    def slow(self) -> str:
        """Makes the host end slow and lossy; returns what it used. ``tc netem`` (100 ms delay, 5 %
        loss) where the kernel has it; otherwise a token bucket at 32 kbit/s with a short queue,
        which delays what queues behind a full bucket and drops what overflows it."""
        try:
            _run(
                "tc",
                "qdisc",
                "replace",
                "dev",
                self.host_device,
                "root",
                "netem",
                "delay",
                "100ms",
                "loss",
                "5%",
            )
            return "netem delay 100ms loss 5%"
        except LinkError as exc:
            if "unknown" not in str(exc):
                raise
        bucket = ("tbf", "rate", "32kbit", "burst", "1600", "limit", "3000")
        _run("tc", "qdisc", "replace", "dev", self.host_device, "root", *bucket)
        return " ".join(bucket)

    def clear(self) -> None:
        """Removes the qdisc ``slow`` put on the host end."""
        _run("tc", "qdisc", "del", "dev", self.host_device, "root")


def _taken_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network this namespace has an address in or a route to."""
    addresses = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=False).stdout
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=False).stdout
    words = addresses.split() + [line.split()[0] for line in routes.splitlines() if line.split()]
    taken = []
    for word in words:
        with contextlib.suppress(ValueError):
            taken.append(ipaddress.IPv4Interface(word).network)
    return taken


def _free_subnet() -> ipaddress.IPv4Network:
    """A /30 in 10.200.0.0/13 that overlaps nothing this namespace has an address in or a route to
    (picked at random, so that parallel tests and other users of the machine do not collide)."""
    taken = _taken_networks()
    while True:
        subnet = ipaddress.IPv4Network((0x0AC80000 + 4 * random.randrange(1 << 17), 30))
        if not any(subnet.overlaps(network) for network in taken):
            return subnet


def _require_namespaces() -> None:
    require_binary("ip")
    require_binary("tc")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (ip netns add)")


@contextlib.contextmanager
def isolated_link() -> Iterator[NetworkLink]:
    """A fresh namespace and veth pair, both ends up and addressed; all of it removed on exit."""
    _require_namespaces()
    tag = uuid.uuid4().hex[:6]
    namespace, host, inner = f"rotary-{tag}", f"rv{tag}h", f"rv{tag}n"
    try:
        _run("ip", "netns", "add", namespace)
    except LinkError as exc:
        if IN_CI:
            pytest.fail(f"network namespaces are not allowed here: {exc}")
        pytest.skip(f"network namespaces are not allowed here: {exc}")
    subnet: ipaddress.IPv4Network | None = None
    try:
        subnet = _free_subnet()
        host_address, inner_address = (str(a) for a in subnet.hosts())
        # Should the pair's route ever go, this keeps packets for the subnet off the default route.
        _run("ip", "route", "add", "unreachable", str(subnet), "metric", "4000")
        _run("ip", "link", "add", host, "type", "veth", "peer", "name", inner)
        _run("ip", "link", "set", inner, "netns", namespace)
        _run("ip", "addr", "add", f"{host_address}/30", "dev", host)
        _run("ip", "link", "set", host, "up")
        _run("ip", "netns", "exec", namespace, "ip", "addr", "add", f"{inner_address}/30", "dev", inner)
        _run("ip", "netns", "exec", namespace, "ip", "link", "set", inner, "up")
        _run("ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up")
        yield NetworkLink(namespace, host, inner, host_address, inner_address)
    finally:
        with contextlib.suppress(LinkError):
            _run("ip", "link", "del", host)  # deletes the peer and the qdisc with it
        if subnet is not None:
            with contextlib.suppress(LinkError):
                _run("ip", "route", "del", "unreachable", str(subnet), "metric", "4000")
        _run("ip", "netns", "del", namespace)
