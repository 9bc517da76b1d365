"""Server configuration: the Centrifugo v6 schema, loading from file/env/flags, and validation.

See https://centrifugal.dev/docs/server/configuration
"""

from __future__ import annotations


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` lists every reason, each with its key path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
