"""Runs one fuzz target under atheris: ``python -m reliability.fuzz.run TARGET [libFuzzer flags]``.

rotary's modules are imported under atheris' instrumentation, so the fuzzer is guided by coverage
of rotary's own code. The target's seeds and the inputs kept in reliability/corpus/TARGET start
the run; a crash (a broken contract or any escaping exception) is written to the artifact prefix
the caller gives (``-artifact_prefix=``), and the exit status is non-zero.
"""

from __future__ import annotations

import sys
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


def main() -> None:
    import atheris  # type: ignore[import-untyped]

    with atheris.instrument_imports(include=["rotary"]):
        from reliability.fuzz.catalog import TARGETS
        from reliability.fuzz.harness import Harness

    name, flags = sys.argv[1], sys.argv[2:]
    target = TARGETS[name](Harness())
    target.setup()
    directories = [flag for flag in flags if not flag.startswith("-")]
    options = [flag for flag in flags if flag.startswith("-")]
    seed_directory = CORPUS / target.corpus_name()
    atheris.Setup([sys.argv[0], *options, *directories, str(seed_directory)], target.feed)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
