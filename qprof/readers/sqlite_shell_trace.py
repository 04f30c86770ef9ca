"""Read the sqlite3 shell's ``.trace`` output, in each of its modes.

Each event is the statement followed by the ``;`` the shell appends, newlines
kept. Modes and what this reader does with them:

- plain (``.trace FILE``): SQL as written, so ``:name``/``$name`` placeholders
  stay; they are bound from the shell's parameter table (below).
- ``--expanded``: the bound values are already in the SQL.
- ``--profile``: the statement once, after it ran, with `` -- N ns`` appended;
  N becomes ``logged_ns``.
- ``--stmt --profile``: the statement when it starts and again, with its time,
  when it ends; the pair is one statement.
- ``.trace stdout``: result rows are interleaved. A line that does not start a
  statement (by its first word) where a new event would begin is a result row:
  it is skipped and counted (logged at INFO), not reported as a bad line.

Trigger programs show as ``-- TRIGGER name;`` and ``-- `` prefixed statements:
they run by themselves when the outer statement is replayed, so they are
skipped. The shell's own ``.parameter`` bookkeeping (statements on
``temp.sqlite_parameters``) is not replayed either; the values it stores bind
the named parameters of the statements after it, as the shell did.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw

from qprof.errors import WorkloadError, excerpt
from qprof.readers.base import ReadProblems, ReadProgress, numbered_lines
from qprof.readers.literals import parse_sql_literal
from qprof.readers.sql_text import is_statement_start, named_placeholders
from qprof.trace import Statement

NAME = "sqlite_trace"
DESCRIPTION = "sqlite3 shell .trace output (plain, --expanded, --profile, --stmt)"

log = logging.getLogger(__name__)

_PROFILE = re.compile(r"; -- (\d+) ns\s*$")
_PARAMETER_TABLE = "temp.sqlite_parameters"
_SET_PARAMETER = re.compile(
    r"REPLACE INTO temp\.sqlite_parameters\(key,value\)\s*VALUES\('((?:[^']|'')*)',(.*)\);\s*$",
    re.S | re.I,
)


def sniff(head: list[str]) -> bool:
    """Return True when the first lines carry a mark only ``.trace`` writes."""
    return any(
        _PROFILE.search(line)
        or line.startswith("-- TRIGGER ")
        or _PARAMETER_TABLE in line
        for line in head
    )


def read(
    path: Path, problems: ReadProblems, progress: ReadProgress | None = None
) -> Iterator[Statement]:
    """Yield each statement the shell traced to ``path``, counting result rows."""
    trace = _ShellTrace(str(path))
    pending: list[str] = []
    start = 0
    result_rows = 0
    for number, line in numbered_lines(path, progress):
        if not pending:
            if not line.strip() or line.startswith("--"):
                continue  # a trigger program's statement, or a blank line
            # Limitation: a result row that begins with a statement keyword is read as SQL.
            if not is_statement_start(line):
                result_rows += 1
                continue
            start = number
        pending.append(line)
        profiled = _PROFILE.search(line)
        if profiled is None and not line.rstrip().endswith(";"):
            continue
        text = "".join(pending)
        if profiled is not None:
            text = text[: len(text) - len(line)] + line[: profiled.start() + 1]
        if not apsw.complete(text):
            continue
        pending = []
        logged_ns = int(profiled.group(1)) if profiled is not None else None
        yield from trace.event(text.strip(), start, logged_ns)
    yield from trace.finish()
    if pending:
        problems.report(
            WorkloadError(
                path,
                start,
                "a statement ending in ';'",
                excerpt("".join(pending)),
                "the trace ends inside a statement",
            )
        )
    if result_rows:
        log.info("%s: skipped %d result rows (.trace stdout)", path, result_rows)


class _ShellTrace:
    """Turns trace events into statements: pairs --stmt/--profile, binds parameters."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.parameters: dict[str, Any] = {}
        self.started: Statement | None = None

    def event(self, sql: str, line: int, logged_ns: int | None) -> Iterator[Statement]:
        """Yield what one traced event adds: a statement, or nothing yet."""
        if _PARAMETER_TABLE in sql:
            self._note_parameter(sql)
            return
        started, self.started = self.started, None
        if logged_ns is not None and started is not None and started.sql == sql:
            started.logged_ns = logged_ns  # the end of the statement that started
            yield started
            return
        if started is not None:
            yield started
        statement = Statement(sql, self._bindings(sql), self.source, line)
        if logged_ns is None:
            self.started = statement  # its --profile event may follow
        else:
            statement.logged_ns = logged_ns
            yield statement

    def finish(self) -> Iterator[Statement]:
        """Yield a started statement no profile event followed."""
        if self.started is not None:
            yield self.started
            self.started = None

    def _bindings(self, sql: str) -> dict[str, Any] | None:
        if ":" not in sql and "$" not in sql and "@" not in sql:
            return None
        names = named_placeholders(sql)
        if not names:
            return None
        # An unset parameter is bound to NULL, as the shell binds it.
        return {name: self.parameters.get(name) for name in names}

    def _note_parameter(self, sql: str) -> None:
        """Track ``.parameter set``/``clear``, which the shell runs as SQL."""
        match = _SET_PARAMETER.match(sql)
        if match is not None:
            try:
                value = parse_sql_literal(match.group(2))
            except ValueError:
                value = match.group(2)
            self.parameters[match.group(1).replace("''", "'")[1:]] = value
        elif sql.upper().startswith(("DELETE", "DROP")):
            # Limitation: .parameter unset NAME is read as .parameter clear.
            self.parameters.clear()
