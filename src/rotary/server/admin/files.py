"""The admin UI's files: rotary's own UI from package data, or the directory ``admin.web_path`` names.

The built-in files are read once, at build; a ``web_path`` directory is read on each request, so a
developer's edit shows on reload, as with Centrifugo's ``http.FileServer``. A path never leaves its
root. See https://centrifugal.dev/docs/server/admin_web.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Final, Protocol

INDEX: Final = "index.html"

CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}
"""Types of the files the built-in UI has; others fall back to ``mimetypes``."""


@dataclass(frozen=True, slots=True)
class File:
    body: bytes
    content_type: str


class Files(Protocol):
    builtin: bool
    """Whether these are rotary's own files (served with a strict content security policy)."""

    def find(self, path: str) -> File | None:
        """The file at ``path`` (relative, "/"-separated, "" or ending in "/" for an index)."""


def _content_type(name: str) -> str:
    suffix = PurePosixPath(name).suffix
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _parts(path: str) -> tuple[str, ...] | None:
    """The path's segments with an index appended where it names a directory; None if it climbs."""
    parts = tuple(p for p in path.split("/") if p not in ("", "."))
    if ".." in parts or any("\\" in p or "\0" in p for p in parts):
        return None
    return (*parts, INDEX) if path == "" or path.endswith("/") else parts


class BuiltinFiles:
    """The files of ``rotary/server/admin/static``, loaded into memory."""

    builtin = True

    def __init__(self) -> None:
        self._files: dict[tuple[str, ...], File] = {}
        self._load(resources.files(__package__).joinpath("static"), ())

    def _load(self, folder: resources.abc.Traversable, parts: tuple[str, ...]) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                self._load(entry, (*parts, entry.name))
            else:
                self._files[(*parts, entry.name)] = File(entry.read_bytes(), _content_type(entry.name))

    def find(self, path: str) -> File | None:
        parts = _parts(path)
        return None if parts is None else self._files.get(parts)


class DirectoryFiles:
    """The files under a directory on disk (``admin.web_path``)."""

    builtin = False

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    def find(self, path: str) -> File | None:
        parts = _parts(path)
        if parts is None:
            return None
        target = self._root.joinpath(*parts)
        if target.is_dir():
            target = target / INDEX
        try:
            target = target.resolve()
            if not target.is_relative_to(self._root):  # a symlink out of the root
                return None
            return File(target.read_bytes(), _content_type(target.name))
        except OSError:
            return None
