"""Read Python ``sqlite3``'s ``Connection.set_trace_callback`` output.

Two variants: ``set_trace_callback(print)`` (plain text, one event a line,
but an event keeps its newlines), and one JSON string a line
(``set_trace_callback(lambda s: print(json.dumps(s)))``), which is
unambiguous. A JSON *string* a line, not an object, tells it from a qprof trace.

CPython passes ``sqlite3_expanded_sql``, so values are inlined in the SQL and
replayed as they are. Two kinds of event are not statements of the
application and are dropped:

- ``-- `` events: statements that virtual tables (FTS5 shadow tables,
  table-valued pragmas) run inside the application's statement; they run
  again by themselves when it is replayed.
- Trigger duplicates: each trigger program that starts reports the *outer*
  statement's text once more. Back-to-back identical ``INSERT``, ``UPDATE``,
  ``DELETE`` or ``REPLACE`` events (``-- `` events between them ignored) are
  read as one statement; other statements cannot fire triggers and are
  never merged.

In the plain variant a new statement begins at a line whose first word can
begin one (``SELECT``, ``INSERT``, ...) when the text before it is finished
(quotes, brackets and trigger bodies closed, not ending in ``AND``, ``UNION``,
a comma...); other lines continue the statement before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from qprof.errors import WorkloadError, excerpt
from qprof.readers.base import ReadProblems, ReadProgress, numbered_lines
from qprof.readers.sql_text import (
    WRITE_WORDS,
    first_word,
    is_finished,
    is_statement_start,
)
from qprof.trace import Statement

NAME = "python_trace"
DESCRIPTION = (
    "Python sqlite3 set_trace_callback output (plain, or one JSON string a line)"
)

_NESTED = "-- "


def sniff(head: list[str]) -> bool:
    """Return True for JSON strings a line, or SQL lines that lack semicolons.

    The plain variant is told from an SQL script by its first lines: at least
    two begin a statement, and no line ends with ``;``.
    """
    lines = [line.strip() for line in head if line.strip()]
    if not lines:
        return False
    if lines[0].startswith('"'):
        return _is_json_string(lines[0])
    starts = sum(1 for line in lines if is_statement_start(line))
    return starts >= 2 and not any(line.endswith(";") for line in lines)


def read(
    path: Path, problems: ReadProblems, progress: ReadProgress | None = None
) -> Iterator[Statement]:
    """Yield each statement the application ran, from the trace at ``path``."""
    events = _events(path, problems, progress)
    yield from _without_trigger_duplicates(events, str(path))


def _events(
    path: Path, problems: ReadProblems, progress: ReadProgress | None
) -> Iterator[tuple[int, str]]:
    """Yield ``(line, sql)`` for each traced event, nested ones included."""
    lines = numbered_lines(path, progress)
    for number, line in lines:
        text = line.strip()
        if not text:
            continue
        if text.startswith('"'):
            yield from _json_events(path, problems, number, line, lines)
        else:
            yield from _plain_events(path, problems, number, line, lines)
        return


def _json_events(
    path: Path,
    problems: ReadProblems,
    first: int,
    first_line: str,
    rest: Iterator[tuple[int, str]],
) -> Iterator[tuple[int, str]]:
    loads = json.JSONDecoder().decode
    for number, line in _chain(first, first_line, rest):
        if not line.strip():
            continue
        try:
            event = loads(line)
        except ValueError:
            event = None
        if not isinstance(event, str):
            problems.report(
                WorkloadError(
                    path,
                    number,
                    "a JSON string (one traced statement)",
                    excerpt(line),
                    "is the file cut off, or in another format? (see replay's --format)",
                )
            )
            continue
        yield number, event


def _plain_events(
    path: Path,
    problems: ReadProblems,
    first: int,
    first_line: str,
    rest: Iterator[tuple[int, str]],
) -> Iterator[tuple[int, str]]:
    pending: list[str] = []
    start = 0
    for number, line in _chain(first, first_line, rest):
        if not line.strip():
            continue
        if pending and not _begins_event(line, pending):
            pending.append(line)
            continue
        if pending:
            yield start, "".join(pending)
            pending = []
        if not line.startswith(_NESTED) and not is_statement_start(line):
            problems.report(
                WorkloadError(
                    path,
                    number,
                    "a traced SQL statement",
                    excerpt(line),
                    "is other output mixed into the trace?",
                )
            )
            continue
        start, pending = number, [line]
    if pending:
        yield start, "".join(pending)


def _begins_event(line: str, pending: list[str]) -> bool:
    """Return True when ``line`` starts a new event rather than continuing one."""
    if not (line.startswith(_NESTED) or is_statement_start(line)):
        return False
    text = "".join(pending)
    if text.startswith(_NESTED):
        text = text[len(_NESTED) :]
    if not is_finished(text):
        return False
    # Limitation: in the plain variant, a finished-looking line followed by one
    # starting with SELECT/VALUES/WITH is split, except after INSERT/REPLACE/CREATE
    # with no SELECT or VALUES yet; use the JSON variant for exact statements.
    word = first_word(line)
    if word in ("SELECT", "VALUES", "WITH") and first_word(text) in (
        "INSERT",
        "REPLACE",
        "CREATE",
    ):
        upper = text.upper()
        return "SELECT" in upper or "VALUES" in upper or "DEFAULT" in upper
    return True


def _without_trigger_duplicates(
    events: Iterator[tuple[int, str]], source: str
) -> Iterator[Statement]:
    # Limitation: a write statement run twice in a row with the same text (and
    # values) is counted once, like the duplicate events its triggers cause.
    previous: str | None = None
    for number, event in events:
        if event.startswith(_NESTED):
            continue
        sql = event.strip()
        if not sql:
            continue
        if sql == previous:
            continue
        previous = sql if first_word(sql) in WRITE_WORDS else None
        yield Statement(sql, None, source, number)


def _chain(
    number: int, line: str, rest: Iterator[tuple[int, str]]
) -> Iterator[tuple[int, str]]:
    yield number, line
    yield from rest


def _is_json_string(text: str) -> bool:
    try:
        return isinstance(json.loads(text), str)
    except ValueError:
        return False
