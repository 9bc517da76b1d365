"""constraints.txt pins every dependency pyproject.toml declares (extras included) at a version
inside its declared range: a dependency added with a range but no pin would reach the suite at
whatever version pip picks that day, and a pin outside its range would make the install fail."""

from __future__ import annotations

from importlib.metadata import metadata, requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

CONSTRAINTS = Path(__file__).resolve().parents[2] / "constraints.txt"


def pins() -> dict[str, str]:
    found = {}
    for line in CONSTRAINTS.read_text().splitlines():
        pin = line.split("#", 1)[0].strip()
        if pin:
            name, version = pin.split("==")
            found[canonicalize_name(name)] = version
    return found


def declared() -> list[Requirement]:
    extras = [""] + (metadata("rotary").get_all("Provides-Extra") or [])
    wanted = []
    for text in requires("rotary") or []:
        req = Requirement(text)
        if canonicalize_name(req.name) == "rotary":
            continue  # rotary[all] and the like: their parts are listed on their own
        if req.marker is None or any(req.marker.evaluate({"extra": extra}) for extra in extras):
            wanted.append(req)
    return wanted


def test_every_declared_dependency_is_pinned_inside_its_range() -> None:
    pinned = pins()
    unpinned = [str(req) for req in declared() if canonicalize_name(req.name) not in pinned]
    outside = [
        f"{req} (pinned {pinned[canonicalize_name(req.name)]})"
        for req in declared()
        if canonicalize_name(req.name) in pinned
        and not req.specifier.contains(pinned[canonicalize_name(req.name)], prereleases=True)
    ]
    assert (unpinned, outside) == ([], [])
