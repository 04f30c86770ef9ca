"""Read SQLAlchemy's engine log (``echo=True``, or ``sqlalchemy.engine`` at INFO).

Two prefixes are understood: ``echo=True``'s own handler
(``2026-12-03 19:32:35,957 INFO sqlalchemy.engine.Engine SELECT ...``) and
``logging.basicConfig()``'s (``INFO:sqlalchemy.engine.Engine:SELECT ...``).
Each statement is two records: the SQL (its later lines carry no prefix), then
the parameters, after a bracketed note::

    [generated in 0.00010s] (1991,)
    [cached since 0.02412s ago] (2,)
    [raw sql] ()
    [insertmanyvalues 2/4 (ordered; batch not supported)] ('Accept',)
    [generated in 0.00014s] [('a', 1), ('b', 2)  ... displaying 10 of 25 total
    bound parameter sets ...  ('y', 24), ('z', 25)]    (one line in the log)

Parameters are a Python repr (parsed without evaluation): a tuple, a dict for
named binds, or a list of them for ``executemany`` (one statement per set).
``BEGIN (implicit)`` is replayed as ``BEGIN``; ``COMMIT`` and ``ROLLBACK`` as
themselves. The log has no statement durations, only compile times.
"""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qprof.errors import WorkloadError, excerpt
from qprof.readers.base import ReadProblems, ReadProgress, numbered_lines
from qprof.readers.literals import parse_python_literal
from qprof.trace import Params, Statement

NAME = "sqlalchemy"
DESCRIPTION = (
    "SQLAlchemy engine log (echo=True or the sqlalchemy.engine logger at INFO)"
)

log = logging.getLogger(__name__)

_ECHO = re.compile(
    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ([A-Z]+) (sqlalchemy\.engine\S*) ?(.*)",
    re.S,
)
_BASIC = re.compile(r"([A-Z]+):(sqlalchemy\.engine[^:\s]*):(.*)", re.S)
# Another logger's record in either format: it ends the record before it.
_OTHER = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \S|(?:DEBUG|INFO|WARNING|ERROR|CRITICAL):[^:\s]+:"
)
_PARAMS = re.compile(r"\[([^\]]*)\] ?(.*)", re.S)
_SETS_SHOWN = re.compile(
    r"\s*\.\.\. displaying (\d+) of (\d+) total bound parameter (sets|parameters)? ?\.\.\.\s*"
)
_TRANSACTION = {"BEGIN (implicit)": "BEGIN", "COMMIT": "COMMIT", "ROLLBACK": "ROLLBACK"}


def sniff(head: list[str]) -> bool:
    """Return True when a first line is a ``sqlalchemy.engine`` log record."""
    return any(_ECHO.match(line) or _BASIC.match(line) for line in head)


def read(
    path: Path, problems: ReadProblems, progress: ReadProgress | None = None
) -> Iterator[Statement]:
    """Yield each statement the engine log at ``path`` records, with its parameters."""
    reader = _EngineLog(path, problems)
    record: _Record | None = None
    for number, line in numbered_lines(path, progress):
        started = _start(number, line)
        if started is not None:
            if record is not None:
                yield from reader.take(record)
            record = started
        elif record is not None and not _OTHER.match(line):
            record.lines.append(line)
        elif _OTHER.match(line):
            if record is not None:
                yield from reader.take(record)
            record = None
        elif line.strip():
            problems.report(_bad_line(path, number, line))
    if record is not None:
        yield from reader.take(record)
    yield from reader.finish()


@dataclass
class _Record:
    """One log record of the engine logger: its first line and the lines after."""

    line: int
    level: str
    ts: float | None
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.lines).strip()


def _start(number: int, line: str) -> _Record | None:
    """Return a new record when ``line`` begins one of the engine logger's."""
    if line[:1].isdigit():
        match = _ECHO.match(line)
        if match:
            stamp, level, _, message = match.groups()
            return _Record(number, level, _timestamp(stamp), [message])
        return None
    match = _BASIC.match(line)
    if match:
        level, _, message = match.groups()
        return _Record(number, level, None, [message])
    return None


def _timestamp(stamp: str) -> float | None:
    # Limitation: echo=True timestamps carry no time zone; they are read as local time.
    try:
        return datetime.datetime.fromisoformat(stamp.replace(",", ".")).timestamp()
    except ValueError:
        return None


class _EngineLog:
    """Pairs each SQL record with the parameter record after it."""

    def __init__(self, path: Path, problems: ReadProblems) -> None:
        self.path = path
        self.source = str(path)
        self.problems = problems
        self.pending: tuple[_Record, str] | None = None

    def take(self, record: _Record) -> Iterator[Statement]:
        """Yield the statements that ``record`` completes."""
        if record.level != "INFO":
            return  # DEBUG records are result rows (echo="debug"); others are not SQL.
        text = record.text
        if text.startswith("[") and _PARAMS.match(text):
            yield from self._bind(record, text)
            return
        yield from self.finish()
        if text.startswith(("BEGIN (implicit;", "COMMIT using", "ROLLBACK using")):
            return  # autocommit mode: SQLAlchemy says nothing was sent to SQLite
        if text:
            # A COMMIT is SQLAlchemy's own record, or a statement the application
            # sent (then a parameter record follows): either way it is one COMMIT.
            self.pending = (record, _TRANSACTION.get(text, text))

    def finish(self) -> Iterator[Statement]:
        """Yield an SQL record that no parameter record followed, unbound."""
        if self.pending is not None:
            (record, sql), self.pending = self.pending, None
            yield Statement(sql, None, self.source, record.line, ts=record.ts)

    def _bind(self, record: _Record, text: str) -> Iterator[Statement]:
        pending, self.pending = self.pending, None
        if pending is None:
            self.problems.report(
                WorkloadError(
                    self.path,
                    record.line,
                    "an SQL record before this parameter record",
                    excerpt(text),
                    "is the start of the log cut off?",
                )
            )
            return
        sets = self._parameter_sets(record, text)
        if sets is None:
            return
        sql_record, sql = pending
        for params in sets:
            yield Statement(sql, params, self.source, sql_record.line, ts=sql_record.ts)

    def _parameter_sets(self, record: _Record, text: str) -> list[Params] | None:
        """Return the parameter sets of a parameter record, or None when unusable."""
        match = _PARAMS.match(text)
        assert match is not None
        shown = match.group(2).strip()
        truncated = _SETS_SHOWN.search(shown)
        if truncated:
            shown = shown[: truncated.start()] + ", " + shown[truncated.end() :]
        try:
            value = parse_python_literal(shown) if shown else ()
        except ValueError:
            self.problems.report(
                WorkloadError(
                    self.path,
                    record.line,
                    "parameters as a Python tuple, dict or list of them",
                    excerpt(shown),
                )
            )
            return None
        if truncated and truncated.group(3) != "sets":
            self.problems.report(
                WorkloadError(
                    self.path,
                    record.line,
                    "every bound parameter of the statement",
                    f"{truncated.group(1)} of {truncated.group(2)} shown",
                    "SQLAlchemy cut the list short, so the statement cannot be replayed",
                )
            )
            return None
        if isinstance(value, list):
            sets = [_params(item) for item in value]
            if truncated:
                self._report_missing_sets(record, truncated)
            return sets
        return [_params(value)]

    def _report_missing_sets(self, record: _Record, truncated: re.Match[str]) -> None:
        shown, total = int(truncated.group(1)), int(truncated.group(2))
        # Limitation: SQLAlchemy logs at most 10 parameter sets of an executemany;
        # the sets it left out are not replayed.
        self.problems.report(
            WorkloadError(
                self.path,
                record.line,
                "every parameter set of the executemany",
                f"{shown} of {total} sets logged",
                f"{total - shown} parameter sets were not logged and are not replayed",
            )
        )


def _params(value: Any) -> Params:
    # Limitation: a string SQLAlchemy shortened in its log ("... (N characters
    # truncated) ...") is bound shortened.
    if isinstance(value, dict):
        return {str(key): item for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return tuple(value) if value else None
    return (value,)


def _bad_line(path: Path, number: int, line: str) -> WorkloadError:
    return WorkloadError(
        path,
        number,
        "a sqlalchemy.engine log record",
        excerpt(line),
        "is this an SQLAlchemy log? (see replay's --format)",
    )
