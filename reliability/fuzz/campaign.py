"""A fuzzing campaign: every target in its own atheris process, figures recorded, corpus kept.

Each run starts from the target's seeds and the inputs kept in reliability/corpus/<target>/, works
in a scratch corpus (where libFuzzer writes only inputs that added coverage), and at the end keeps
the smallest of those in the repository, so the suite replays the interesting inputs without
carrying every mutation.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from reliability.fuzz.harness import Harness
from reliability.record import record

KIT = Path(__file__).resolve().parent.parent
CORPUS = KIT / "corpus"
FINDINGS = KIT / "findings"
HANG_SECONDS = 20
"""An input that keeps a target busy this long is a hang (libFuzzer's -timeout)."""


@dataclass
class FuzzResult:
    target: str
    inputs: int
    seconds: float
    crashes: int
    hangs: int
    corpus: int
    findings: list[str]

    @property
    def clean(self) -> bool:
        return self.crashes == 0 and self.hangs == 0


def seed_name(data: bytes) -> str:
    import hashlib

    return "seed-" + hashlib.sha1(data).hexdigest()[:16]


def write_seeds() -> None:
    """Writes the seeds of every target into its corpus directory (existing files are kept)."""
    from reliability.fuzz.catalog import TARGETS

    harness = Harness()
    for factory in TARGETS.values():
        target = factory(harness)
        target.setup()
        directory = CORPUS / target.corpus_name()
        directory.mkdir(parents=True, exist_ok=True)
        for data in target.seeds():
            (directory / seed_name(data)).write_bytes(data)
        target.close()


def fuzz_target(name: str, inputs: int, max_seconds: int = 0, keep: bool = True) -> FuzzResult:
    """Fuzzes one target in a child process for ``inputs`` inputs (or ``max_seconds``)."""
    from reliability.fuzz.catalog import TARGETS

    corpus_dir = CORPUS / TARGETS[name].corpus_name()
    FINDINGS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"rotary-fuzz-{name}-") as scratch:
        flags = [
            f"-runs={inputs}",
            f"-timeout={HANG_SECONDS}",
            f"-artifact_prefix={FINDINGS}/{name}-",
            "-print_final_stats=1",
            "-rss_limit_mb=4096",
        ]
        if max_seconds:
            flags.append(f"-max_total_time={max_seconds}")
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "reliability.fuzz.run", name, *flags, scratch],
            cwd=KIT.parent,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.monotonic() - began
        log = done.stderr
        executed = _stat(log, "number_of_executed_units")
        # libFuzzer's artifacts: crash-, leak-, oom- and timeout- (a hang); a slow-unit is only slow.
        fresh = [p for p in FINDINGS.glob(f"{name}-*") if p.stat().st_mtime >= time.time() - seconds - 1]
        findings = sorted(str(p) for p in fresh if "slow-unit-" not in p.name and p.suffix != ".log")
        for finding in findings:  # what the input broke, next to it (the run's log is not kept)
            Path(finding + ".log").write_text(log[-6000:])
        hangs = len([f for f in findings if "timeout-" in f])
        crashes = len(findings) - hangs
        if done.returncode != 0 and not findings:
            crashes = 1
            findings = [f"exit {done.returncode}: {log[-3000:]}"]
        if keep and done.returncode == 0:
            _keep_new_coverage(Path(scratch), corpus_dir)
    corpus = len(list(corpus_dir.iterdir())) if corpus_dir.is_dir() else 0
    return FuzzResult(name, executed, round(seconds, 1), crashes, hangs, corpus, findings)


KEEP_PER_RUN = 40
"""Inputs of one run kept in the repository's corpus: the smallest of those that added coverage."""


def _keep_new_coverage(scratch: Path, corpus: Path) -> None:
    """libFuzzer writes into the scratch corpus only inputs that added coverage; the smallest of
    them join the kept corpus (its ``-merge=1`` would re-execute the runner as a program)."""
    corpus.mkdir(parents=True, exist_ok=True)
    kept = {path.name for path in corpus.iterdir()}
    fresh = sorted((p for p in scratch.iterdir() if p.name not in kept), key=lambda p: p.stat().st_size)
    for path in fresh[:KEEP_PER_RUN]:
        (corpus / path.name).write_bytes(path.read_bytes())


def _stat(log: str, key: str) -> int:
    found = re.findall(rf"stat::{key}:\s+(\d+)", log)
    return int(found[-1]) if found else 0


def fuzz_all(names: list[str], inputs: int, jobs: int = 1, max_seconds: int = 0) -> bool:
    """Fuzzes ``names`` (the long-run targets when empty) for ``inputs`` inputs each, or
    ``max_seconds`` when that comes first (the figures then say how many ran); records them in
    reliability/results/fuzz.json."""
    from reliability.fuzz.catalog import TARGETS

    chosen = names or [name for name, target in TARGETS.items() if target.long_run]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda name: fuzz_target(name, inputs, max_seconds), chosen))
    for result in results:  # said before recording, so that a failure to record loses no figure
        status = "clean" if result.clean else f"{result.crashes} crashes, {result.hangs} hangs"
        rate = result.inputs / result.seconds if result.seconds else 0
        print(f"{result.target}: {result.inputs} inputs in {result.seconds}s ({rate:.0f}/s), {status}")
        for finding in result.findings:
            print(f"  {finding}")
    record("fuzz", {result.target: asdict(result) for result in results})
    return all(result.clean for result in results)
