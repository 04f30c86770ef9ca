"""Read a Rails ActiveRecord log (``log/development.log``), with or without colours.

A statement line is two spaces, an optional name (``Artist Load``,
``TRANSACTION``, empty for raw SQL), the time in milliseconds, two spaces, the
SQL and, when it has any, its binds as a Ruby array::

      Artist Load (0.1ms)  SELECT * FROM "artists" WHERE id = ? LIMIT ?  [["id", 1], ["LIMIT", 1]]

The binds become positional parameters (``(1, 1)`` here) and the milliseconds
``logged_ns``. ANSI colour codes are removed first. ``CACHE`` lines (answered by
ActiveRecord's query cache, so SQLite never saw them) are not replayed. Request
lines (``Started GET "/albums"``, which also becomes the context of the
statements after it), ``Processing by``, ``Completed``, ``Rendered``, the
migration runner's ``-- create_table(...)`` / ``-> 0.0104s`` lines and the
``↳ app/...`` source lines (kept as the caller of the statement above) are not
SQL and not bad lines either.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qprof.errors import WorkloadError, excerpt
from qprof.readers.base import ReadProblems, ReadProgress, numbered_lines
from qprof.readers.literals import parse_ruby_literal
from qprof.trace import Statement

NAME = "rails"
DESCRIPTION = 'Rails ActiveRecord log: Model Load (0.1ms)  SQL  [["id", 1]]'

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STATEMENT = re.compile(
    r"\s+(?P<name>[^()\n]*?)\s*\((?P<ms>\d+(?:\.\d+)?)ms\)  (?P<rest>\S.*)"
)
_BINDS = "  ["
_STARTED = re.compile(r'Started ([A-Z]+) "([^"]*)"')
_CALLER = re.compile(r"\s*↳ (\S+)")
# Lines Rails and its migration runner write that are not statements.
_NOT_SQL = re.compile(
    r"\s*(?:Started |Processing by |Parameters: |Completed |Rendered |Rendering |"
    r"Redirected to |Filter chain halted|Migrating to |== |-- |-> |Cache (?:read|write)|"
    r"Sent (?:data|file)|Can't verify CSRF|No template found)"
)


def sniff(head: list[str]) -> bool:
    """Return True when a first line is an ActiveRecord ``Name (0.1ms)  SQL`` line."""
    return any(_STATEMENT.match(_ANSI.sub("", line)) for line in head)


def read(
    path: Path, problems: ReadProblems, progress: ReadProgress | None = None
) -> Iterator[Statement]:
    """Yield each statement of the ActiveRecord log at ``path``."""
    source = str(path)
    held: Statement | None = None
    context: str | None = None
    for number, raw in numbered_lines(path, progress):
        line = _ANSI.sub("", raw) if "\x1b" in raw else raw
        match = _STATEMENT.match(line)
        if match is None:
            caller = _CALLER.match(line)
            if caller is not None:
                if held is not None:
                    held.caller = caller.group(1)
                continue
            started = _STARTED.match(line)
            if started is not None:
                context = f"{started.group(1)} {started.group(2)}"
            elif line.strip() and not _NOT_SQL.match(line):
                problems.report(_bad_line(path, number, line))
            continue
        if match.group("name").startswith("CACHE"):
            continue  # served by ActiveRecord's query cache, not by SQLite
        statement = _statement(match, source, number, context)
        if statement is None:
            problems.report(_bad_line(path, number, line))
            continue
        if held is not None:
            yield held
        held = statement
    if held is not None:
        yield held


def _statement(
    match: re.Match[str], source: str, number: int, context: str | None
) -> Statement | None:
    sql, binds = _split_binds(match.group("rest").rstrip())
    if binds is None:
        return None
    return Statement(
        sql,
        tuple(binds) or None,
        source,
        number,
        context=context,
        logged_ns=round(float(match.group("ms")) * 1e6),
    )


def _split_binds(rest: str) -> tuple[str, list[Any] | None]:
    """Split ``SQL  [["id", 1]]`` into the SQL and the bound values.

    The split is the rightmost ``  [`` whose remainder parses as a Ruby array of
    ``[name, value]`` pairs; the values are returned (None when it does not
    parse although it looks like binds).
    """
    if not rest.endswith("]"):
        return rest, []
    at = len(rest)
    while (at := rest.rfind(_BINDS, 0, at)) >= 0:
        try:
            binds = parse_ruby_literal(rest[at + 2 :])
        except ValueError:
            continue
        if isinstance(binds, list):
            return rest[:at].rstrip(), [_bind_value(bind) for bind in binds]
    if rest.endswith("]]"):
        return rest, None
    return rest, []  # a ``[...]`` that is part of the SQL (a quoted name)


def _bind_value(bind: Any) -> Any:
    """Return the value of a ``[name, value]`` pair (Rails 7 may log bare values)."""
    # Limitation: a value Rails shortened in its log ("<16 bytes of binary data>")
    # is bound shortened.
    if isinstance(bind, list) and len(bind) == 2:
        return bind[1]
    return bind


def _bad_line(path: Path, number: int, line: str) -> WorkloadError:
    return WorkloadError(
        path,
        number,
        'an ActiveRecord line: Name (0.1ms)  SQL  [["name", value], ...]',
        excerpt(line),
        "is this a Rails log? (see replay's --format)",
    )
