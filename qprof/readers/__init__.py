"""Workload readers: one module per log format, all yielding ``Statement`` records.

A reader module has ``NAME``, ``DESCRIPTION``, ``sniff(head_lines) -> bool`` and
``read(path, problems, progress) -> Iterator[Statement]``. ``READERS`` lists
them in the order sniffing tries them (the most specific first); adding a
format is adding a module and a line there, replay does not change.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from qprof.errors import WorkloadError
from qprof.readers import (
    django_log,
    python_trace,
    qprof_trace,
    rails_log,
    sql_script,
    sqlalchemy_log,
    sqlite_shell_trace,
)
from qprof.readers.base import ReadProblems, ReadProgress, open_text
from qprof.trace import Statement

# Each sniff looks for marks only its format writes; ``sql`` accepts almost
# anything, so it stays last as the fallback.
READERS: tuple[ModuleType, ...] = (
    qprof_trace,
    sqlalchemy_log,
    django_log,
    rails_log,
    sqlite_shell_trace,
    python_trace,
    sql_script,
)

SNIFF_LINES = 20

__all__ = ["READERS", "ReadProblems", "ReadProgress", "detect_format", "read_workload"]


def format_names() -> list[str]:
    """Return the names ``--format`` accepts."""
    return [reader.NAME for reader in READERS]


def detect_format(path: Path) -> str:
    """Return the name of the reader that fits the first lines of ``path``.

    Raises ``WorkloadError`` when the file cannot be read or no reader fits.
    """
    _check_file(path)
    head = _head(path)
    for reader in READERS:
        if reader.sniff(head):
            return str(reader.NAME)
    raise WorkloadError(
        path, 1, "a workload in one of: " + ", ".join(format_names()), "none of them"
    )


def read_workload(
    path: str | Path,
    format: str | None = None,
    problems: ReadProblems | None = None,
    progress: ReadProgress | None = None,
) -> Iterator[Statement]:
    """Yield the statements of the workload at ``path``, streaming.

    ``format`` is a reader name, or None to detect it from the content. Bad
    lines go to ``problems`` (reported and skipped, or raised when strict).
    Raises ``WorkloadError`` for a missing file or an unknown format.
    """
    path = Path(path)
    _check_file(path)
    name = format or detect_format(path)
    reader = _reader(name, path)
    return reader.read(path, problems or ReadProblems(), progress)  # type: ignore[no-any-return]


def _check_file(path: Path) -> None:
    if path.is_file():
        return
    if path.is_dir():
        reason = "a directory"
    elif path.exists():
        reason = "not a regular file (pipes and devices are not read: save the log to a file)"
    else:
        reason = "no such file"
    raise WorkloadError(path, 0, "a workload file", reason)


def _reader(name: str, path: Path) -> ModuleType:
    for reader in READERS:
        if reader.NAME == name:
            return reader
    raise WorkloadError(
        path, 0, "a format among " + ", ".join(format_names()), repr(name)
    )


def _head(path: Path) -> list[str]:
    try:
        with open_text(path) as handle:
            return [line for _, line in zip(range(SNIFF_LINES), handle, strict=False)]
    except OSError as error:
        raise WorkloadError(
            path, 0, "a readable workload file", error.strerror or str(error)
        ) from error
