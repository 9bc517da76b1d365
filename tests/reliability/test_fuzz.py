"""The fuzzing kit's short variant: every kept input replayed in-process, then a short atheris
run per target in its own process (the long runs are `python -m reliability fuzz`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reliability.fuzz.campaign import CORPUS, fuzz_target
from reliability.fuzz.catalog import TARGETS
from reliability.fuzz.harness import Harness
from reliability.fuzz.targets import Target

SHORT_INPUTS = 1000
SHORT_SECONDS = 8


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    built = Harness()
    yield built
    built.close()


@pytest.fixture(params=sorted(TARGETS))
def target(request: pytest.FixtureRequest, harness: Harness) -> Iterator[Target]:
    built = TARGETS[request.param](harness)
    built.setup()
    yield built
    built.close()


def test_every_target_has_a_kept_corpus() -> None:
    for target in TARGETS.values():
        corpus = target.corpus_name()
        assert any((CORPUS / corpus).glob("*")), (
            f"reliability/corpus/{corpus} is empty: run python -m reliability seed"
        )


def test_kept_inputs_replay_cleanly(target: Target) -> None:
    inputs = sorted((CORPUS / target.corpus_name()).iterdir())
    for path in inputs:
        try:
            target.feed(path.read_bytes())
        except AssertionError as exc:
            raise AssertionError(
                f"{path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}: {exc}"
            ) from exc


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_short_fuzz_run_is_clean(name: str) -> None:
    result = fuzz_target(name, SHORT_INPUTS, max_seconds=SHORT_SECONDS, keep=False)
    assert result.clean, result.findings
    assert result.inputs > 0, "the fuzzer ran no input"
