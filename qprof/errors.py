"""Exceptions that qprof raises: one base class, with the facts as fields.

The CLI turns them into one line on stderr; tests and callers read the fields.
"""

from __future__ import annotations

from pathlib import Path


class QprofError(Exception):
    """Base class of every error qprof raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class WorkloadError(QprofError):
    """A workload file that cannot be read, or one line of it that makes no sense.

    Fields: ``path`` and ``line`` (1-based, 0 when the whole file is at fault),
    ``expected`` (what the reader wanted), ``found`` (a short excerpt of what was
    there) and ``hint`` (what to do next, may be empty).
    """

    def __init__(
        self, path: str | Path, line: int, expected: str, found: str, hint: str = ""
    ) -> None:
        self.path = str(path)
        self.line = line
        self.expected = expected
        self.found = found
        self.hint = hint
        where = f"{self.path}:{line}" if line else self.path
        text = f"{where}: expected {expected}, found {found}"
        super().__init__(f"{text}; {hint}" if hint else text)


class DatabaseError(QprofError):
    """A database file that is missing, unreadable or not SQLite.

    Fields: ``path`` and ``reason``.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class OutputError(QprofError):
    """A file qprof was asked to write that cannot be written.

    Fields: ``path`` and ``reason``.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot write {self.path}: {reason}")


def excerpt(text: str, width: int = 40) -> str:
    """Return ``text`` quoted and cut to ``width`` characters, for error messages.

    >>> excerpt("SELECT 1")
    '"SELECT 1"'
    """
    flat = " ".join(text.split())
    if len(flat) > width:
        flat = flat[: width - 1] + "…"
    return f'"{flat}"' if flat else "an empty line"
