"""What every workload reader shares: numbered lines, and the bad-line policy."""

from __future__ import annotations

import codecs
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from qprof.errors import WorkloadError

log = logging.getLogger(__name__)

SHOWN = 20
"""How many bad lines are logged one by one before they are only counted."""


@dataclass
class ReadProblems:
    """Bad lines met while reading a workload: reported, counted, skipped.

    With ``strict`` the first bad line is raised instead of skipped.
    """

    strict: bool = False
    """Raise the first problem instead of skipping the line."""
    kept: int = 100
    """How many problems to keep for the report; the rest are only counted."""
    problems: list[WorkloadError] = field(default_factory=list)
    """The first ``kept`` problems, in file order."""
    count: int = 0
    """How many lines were skipped in all."""

    def report(self, problem: WorkloadError) -> None:
        """Record ``problem``, or raise it under ``strict``."""
        if self.strict:
            raise problem
        self.count += 1
        if len(self.problems) < self.kept:
            self.problems.append(problem)
        if self.count <= SHOWN:
            log.warning("%s; skipped", problem)
        elif self.count == SHOWN + 1:
            log.warning(
                "%s: more bad lines are skipped and counted, not shown", problem.path
            )


@dataclass
class ReadProgress:
    """How far a reader has got through its file, for progress bars."""

    total_bytes: int = 0
    """The file's size."""
    bytes_read: int = 0
    """Characters consumed so far (bytes, for ASCII text)."""


def text_encoding(path: Path) -> str:
    """Return the encoding to read ``path`` with, from its byte-order mark."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8-sig"


def open_text(path: Path) -> IO[str]:
    """Open ``path`` as text in its encoding (see ``text_encoding``), newlines kept."""
    # Limitation: bytes that are not valid UTF-8 are read as U+FFFD, silently.
    return open(path, encoding=text_encoding(path), errors="replace", newline="")


def numbered_lines(
    path: Path, progress: ReadProgress | None = None
) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` pairs of a text file, 1-based, newline kept.

    The text is UTF-8 (a byte-order mark is dropped) or UTF-16 with its mark.
    Undecodable bytes are replaced rather than fatal: a log with one stray byte
    is still a log. Raises ``WorkloadError`` when the file cannot be opened.
    """
    try:
        handle = open_text(path)
    except OSError as error:
        raise WorkloadError(
            path, 0, "a readable workload file", error.strerror or str(error)
        ) from error
    with handle:
        if progress is None:
            yield from enumerate(handle, 1)
            return
        progress.total_bytes = path.stat().st_size
        for number, line in enumerate(handle, 1):
            progress.bytes_read += len(line)
            yield number, line
