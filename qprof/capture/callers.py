"""Who asked for a statement: the caller's ``file:line``, found by walking the stack.

The caller is the first frame of the application's own code, past qprof, the
standard library, the drivers, data layers (ORMs) and other installed
packages. Every lookup on the hot path is a dictionary hit after the first:
code objects are classified once, and line numbers (which CPython computes
from the bytecode offset) are remembered per offset.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
from types import CodeType, FrameType

# Frames in these packages are never "the caller": the caller is the application line
# that asked a driver or an ORM for the statement.
_SKIPPED_PACKAGES = ("qprof", "apsw", "_pytest", "pytest", "pluggy")
# Data layers over the drivers: passed over when other code called them, and the
# caller themselves (the outermost of them) when nothing else did.
_DATA_LAYERS = (
    "sqlalchemy",
    "django",
    "sqlite_utils",
    "peewee",
    "playhouse",
    "pony",
    "sqlmodel",
    "aiosqlite",
    "tortoise",
    "piccolo",
    "alembic",
    "ormar",
    "sqlobject",
)
_APPLICATION, _LIBRARY, _DATA_LAYER, _THIRD_PARTY = 0, 1, 2, 3
"""Kinds of code: the application's own (outside the environment qprof runs in),
the standard library and the drivers, a data layer, other installed packages."""


class CallerFinder:
    """Find the application frame that asked for a statement."""

    def __init__(self) -> None:
        self._skip_code: dict[int, tuple[CodeType, str, int]] = {}
        """id(code object) -> the code, its short file name and its kind of code."""
        self._callers: dict[tuple[int, int], str] = {}
        """(code object, bytecode offset) -> ``file:line`` (a line number is costly)."""
        self.direct: dict[int, str] = {}
        """The same, for application frames that called a driver themselves (the
        caller is then known from the first frame alone), keyed by one int:
        ``id(code) | offset << 48``."""
        self._driver_prefixes = _package_prefixes(_SKIPPED_PACKAGES)
        self._layer_prefixes = _package_prefixes(_DATA_LAYERS)
        self._stdlib_prefixes = _stdlib_prefixes()
        self._environment = tuple(
            {os.path.join(p, "") for p in (sys.prefix, sys.exec_prefix)}
            - {os.path.join(sys.base_prefix, "")}
        )
        """The virtual environment's folders (none when running a base Python)."""
        try:
            self._root: str | None = os.getcwd()
        except OSError:  # started in a folder that is gone
            self._root = None

    def find(self, frame: FrameType | None) -> str | None:
        """Return ``file:line`` of the application frame that asked for the statement.

        That is the first frame of the application's own code (outside qprof,
        the standard library, the drivers and installed packages); without one
        (a query run in a thread pool of a web framework), the innermost frame of
        an installed package, else the outermost frame of a data layer (an ORM).
        """
        # Keyed by id: a code object hashes its whole contents on every lookup. The
        # code object is kept in _skip_code, so its id cannot be reused by another.
        if frame is None:
            return None
        # One int for (code, offset): addresses stay below 2**48 on 64-bit systems.
        first = id(frame.f_code) | frame.f_lasti << 48
        caller = self.direct.get(first)
        if caller is not None:
            return caller
        codes = self._skip_code
        start = frame
        third_party = layer = None
        while frame is not None:
            code = frame.f_code
            entry = codes.get(id(code))
            if entry is None:
                entry = codes[id(code)] = self._code_entry(code)
            kind = entry[2]
            if kind != _LIBRARY and (kind != _THIRD_PARTY or third_party is None):
                key = (id(code), frame.f_lasti)
                caller = self._callers.get(key)
                if caller is None:
                    caller = self._callers[key] = f"{entry[1]}:{frame.f_lineno}"
                if kind == _APPLICATION:
                    if frame is start:
                        self.direct[first] = caller
                    return caller
                if kind == _THIRD_PARTY:
                    third_party = caller
                else:
                    layer = caller
            frame = frame.f_back
        return third_party or layer

    def _code_entry(self, code: CodeType) -> tuple[CodeType, str, int]:
        filename = code.co_filename
        kind = self._kind_of(filename)
        name = "" if kind == _LIBRARY else _short_path(filename, self._root)
        return code, name, kind

    def _kind_of(self, filename: str) -> int:
        if filename.startswith("<") or filename.startswith(self._driver_prefixes):
            return _LIBRARY
        if filename.startswith(self._layer_prefixes):
            return _DATA_LAYER
        # A system Python keeps site-packages under its stdlib folder.
        if "site-packages" in filename or "dist-packages" in filename:
            return _THIRD_PARTY
        if filename.startswith(self._stdlib_prefixes):
            return _LIBRARY
        # The environment's own scripts (bin/gunicorn, bin/pytest) are not the app's.
        return _THIRD_PARTY if filename.startswith(self._environment) else _APPLICATION


def _stdlib_prefixes() -> tuple[str, ...]:
    stdlib = set()
    for key in ("stdlib", "platstdlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            stdlib.add(os.path.join(os.path.realpath(path), ""))
            stdlib.add(os.path.join(path, ""))
    return tuple(sorted(stdlib))


def _package_prefixes(names: tuple[str, ...]) -> tuple[str, ...]:
    """Return the folders (or files) the installed packages among ``names`` live in."""
    prefixes = set()
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        for location in spec.submodule_search_locations or []:
            prefixes.add(os.path.join(location, ""))
        if spec.origin and not spec.submodule_search_locations:
            prefixes.add(spec.origin)
    return tuple(sorted(prefixes))


def _short_path(filename: str, root: str | None) -> str:
    """Return ``filename`` relative to ``root`` (where the trace began) when under it.

    Tests change directory into folders they then remove, so the working
    directory of the moment is neither stable nor sure to exist.
    """
    if root is None:
        return filename
    try:
        relative = os.path.relpath(os.path.join(root, filename), root)
    except (ValueError, OSError):
        return filename
    return filename if relative.startswith("..") else relative
