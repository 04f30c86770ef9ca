"""Read Django's ``django.db.backends`` debug log (logged when ``DEBUG = True``).

Each record is ``(SECONDS) SQL; args=ARGS; alias=NAME``, the SQL keeping its
newlines, so a record ends at the line that ends with ``; alias=NAME``. On
SQLite the SQL is already interpolated (Django quotes the values itself) and
is replayed as logged; ``executemany`` logs the raw SQL with ``%s``
placeholders and a list of parameter tuples, which is replayed as one
statement per tuple with ``?`` placeholders. The logged seconds become
``logged_ns`` (3 decimals: fast statements log ``(0.000)``).

The schema editor's own logger (``django.db.backends.schema``) writes each DDL
statement a second time as ``SQL; (params None)``; those lines are skipped so
that DDL is counted once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qprof.errors import WorkloadError, excerpt
from qprof.readers.base import ReadProblems, ReadProgress, numbered_lines
from qprof.readers.literals import parse_python_literal
from qprof.readers.sql_text import without_literals
from qprof.trace import Params, Statement

NAME = "django"
DESCRIPTION = (
    "Django django.db.backends debug log: (0.001) SQL; args=(...); alias=default"
)

_HEADER = re.compile(r"\((\d+(?:\.\d+)?)\) ")
_END = re.compile(r"; alias=[\w-]+\s*$")
_SCHEMA = re.compile(r"; \(params .*\)\s*$")
_ARGS = "; args="
# Django's own conversion of its paramstyle (django/db/backends/sqlite3/base.py).
_FORMAT_QMARK = re.compile(r"(?<!%)%s")


def sniff(head: list[str]) -> bool:
    """Return True when the first lines hold a ``(0.001) ...; args=...`` record."""
    return any(_HEADER.match(line) for line in head) and any(
        _ARGS in line for line in head
    )


def read(
    path: Path, problems: ReadProblems, progress: ReadProgress | None = None
) -> Iterator[Statement]:
    """Yield each statement of the Django backend log at ``path``."""
    source = str(path)
    record: list[str] = []
    start = 0
    seconds = ""
    for number, line in numbered_lines(path, progress):
        if not record:
            header = _HEADER.match(line)
            if header is None:
                # Limitation: a schema-editor duplicate that spans lines is
                # skipped by its last line only; its first lines count as bad.
                if line.strip() and not _SCHEMA.search(line):
                    problems.report(_bad_line(path, number, line))
                continue
            start, seconds = number, header.group(1)
            line = line[header.end() :]
        record.append(line)
        if not _END.search(line):
            continue
        text = "".join(record)
        record = []
        parsed = _split_record(text)
        if parsed is None:
            problems.report(_bad_line(path, start, text))
            continue
        logged_ns = round(float(seconds) * 1e9)
        for sql, params in _statements(*parsed):
            yield Statement(sql, params, source, start, logged_ns=logged_ns)
    if record:
        problems.report(
            WorkloadError(
                path,
                start,
                "a record ending in '; alias=NAME'",
                excerpt("".join(record)),
                "the log ends inside a record",
            )
        )


def _split_record(text: str) -> tuple[str, Any] | None:
    """Return the SQL and the parsed ``args`` of a record's text, or None.

    The SQL may itself contain ``; args=`` (in a string): the split is the
    rightmost one whose remainder parses as a Python literal.
    """
    body = _END.split(text.rstrip(), maxsplit=1)[0]
    at = len(body)
    while (at := body.rfind(_ARGS, 0, at)) >= 0:
        try:
            args = parse_python_literal(body[at + len(_ARGS) :])
        except ValueError:
            continue
        return body[:at].strip(), args
    return None


def _statements(sql: str, args: Any) -> Iterator[tuple[str, Params]]:
    """Yield the statements a record stands for, binding raw ``%s`` SQL."""
    if not _has_format_placeholders(sql):
        # Interpolated by Django already: the values are in the SQL.
        yield sql, None
        return
    raw = _to_qmark(sql)
    if isinstance(args, list) and all(isinstance(a, (tuple, list)) for a in args):
        for each in args:  # executemany; an empty list ran nothing
            yield raw, tuple(each)
    elif isinstance(args, (tuple, list)):
        yield raw, tuple(args)
    else:
        yield raw, None


def _has_format_placeholders(sql: str) -> bool:
    return _FORMAT_QMARK.search(without_literals(sql)) is not None


def _to_qmark(sql: str) -> str:
    return _FORMAT_QMARK.sub("?", sql).replace("%%", "%")


def _bad_line(path: Path, number: int, line: str) -> WorkloadError:
    return WorkloadError(
        path,
        number,
        "a django.db.backends record: (0.001) SQL; args=...; alias=NAME",
        excerpt(line),
        "is this a Django log? (see replay's --format)",
    )
