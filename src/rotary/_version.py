"""rotary's version, the one source for the package metadata (pyproject reads it), the public
``rotary.__version__`` and the version the node reports to clients. Semantic versioning: see
CHANGELOG.md for what the public API (``rotary``, ``rotary.testing``) promises."""

__version__ = "0.1.0"
