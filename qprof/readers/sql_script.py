"""Read a plain SQL script: statements split the way SQLite itself splits them.

A statement ends at a semicolon that ``sqlite3_complete()`` (``apsw.complete``)
accepts, so semicolons inside strings, quoted names, comments and trigger
bodies (``CREATE TRIGGER ... BEGIN ...; ...; END;``) do not split it. The
sqlite3 shell's dot-commands (``.tables``) are not SQL: they are reported and
skipped. A script whose last statement lacks its semicolon still yields it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import apsw

from qprof.errors import WorkloadError, excerpt
from qprof.readers.base import ReadProblems, ReadProgress, numbered_lines
from qprof.trace import Statement

NAME = "sql"
DESCRIPTION = "plain SQL script, statements ended by semicolons"

_LEADING_COMMENTS = re.compile(r"(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.S)


def sniff(head: list[str]) -> bool:
    """Return True when the first lines look like SQL rather than another log."""
    for line in head:
        text = line.strip()
        if not text or text.startswith("--"):
            continue
        return not text.startswith(("{", "[", '"'))
    return True


def read(
    path: Path, problems: ReadProblems, progress: ReadProgress | None = None
) -> Iterator[Statement]:
    """Yield each statement of the script at ``path`` with its starting line."""
    source = str(path)
    pending: list[str] = []
    start = 0
    for number, line in numbered_lines(path, progress):
        if "\x00" in line:
            problems.report(
                WorkloadError(
                    path, number, "SQL text", "a NUL byte", "is this a binary file?"
                )
            )
            continue
        if not pending:
            if not line.strip():
                continue
            if line.lstrip().startswith("."):
                problems.report(_dot_command(path, number, line))
                continue
            start = number
        pending.append(line)
        if ";" not in line:
            continue
        text = "".join(pending)
        if not apsw.complete(text):
            continue
        pending = []
        for offset, sql, _ in _split_complete(text):
            yield Statement(sql=sql, params=None, source=source, line=start + offset)
    if pending:
        yield from _last_statement(path, "".join(pending), start, problems)


def _last_statement(
    path: Path, text: str, start: int, problems: ReadProblems
) -> Iterator[Statement]:
    """Yield what is left at the end of the file: the complete statements, then one
    that lacks only its semicolon; an unterminated string, comment or trigger is
    reported instead."""
    done = 0
    for offset, sql, end in _split_complete(text):
        yield Statement(sql=sql, params=None, source=str(path), line=start + offset)
        done = end
    start += text.count("\n", 0, done)
    text = text[done:]
    lead = _skip_comments(text, 0, len(text))
    sql = text[lead:].strip()
    if not sql:
        return
    first = start + text.count("\n", 0, lead)
    if apsw.complete(sql + ";"):
        yield Statement(sql=sql, params=None, source=str(path), line=first)
        return
    problems.report(
        WorkloadError(
            path,
            first,
            "a complete statement",
            excerpt(sql),
            f"a string, comment or trigger opened here runs to the end of the file "
            f"(line {start + text.count(chr(10), 0, len(text.rstrip()))}); nothing after "
            "it was replayed",
        )
    )


def _split_complete(text: str) -> Iterator[tuple[int, str, int]]:
    """Split SQL ``text`` into its complete statements: ``(line offset, sql, end)``.

    Each candidate end is a semicolon; the shortest complete prefix is one
    statement. Prefixes holding only comments are dropped. ``end`` is where
    the text after the statement starts.
    """
    begin = 0
    for index, char in enumerate(text):
        if char != ";" or not apsw.complete(text[begin : index + 1]):
            continue
        lead = _skip_comments(text, begin, index)
        if lead < index:
            yield text.count("\n", 0, lead), text[lead : index + 1].strip(), index + 1
        begin = index + 1


def _skip_comments(text: str, begin: int, end: int) -> int:
    """Return where the first token after blanks and comments in ``text[begin:end]`` is."""
    match = _LEADING_COMMENTS.match(text, begin, end)
    return match.end() if match else begin


def _dot_command(path: Path, number: int, line: str) -> WorkloadError:
    return WorkloadError(
        path,
        number,
        "an SQL statement",
        excerpt(line),
        "sqlite3 shell dot-commands are not replayed",
    )
