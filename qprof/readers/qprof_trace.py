"""Read qprof's own trace: one JSON object a line (see ``qprof.trace``).

A line that is not a JSON object with an ``sql`` string (its own or its
shape's) is reported with its line number and skipped; a last line cut off
mid-write (a crashed capture) is reported the same way, so everything before it
still loads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qprof.errors import WorkloadError, excerpt
from qprof.readers.base import ReadProblems, ReadProgress, numbered_lines
from qprof.trace import PART_KEY, SHAPE_KEY, TRACE_HEADER_KEY, Statement, decode_params

NAME = "qprof"
DESCRIPTION = "qprof trace, one JSON object per line (from capture or replay --out)"


def sniff(head: list[str]) -> bool:
    """Return True when most of the first non-blank lines are trace records.

    One bad line (a cut-off header, a stray message) does not hide the format.
    """
    lines = [line.strip() for line in head if line.strip()]
    records = sum(1 for line in lines if _is_record(line))
    return bool(lines) and records * 2 >= len(lines) and records > 0


def _is_record(text: str) -> bool:
    if not text.startswith("{"):
        return False
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return isinstance(record, dict) and (
        "sql" in record or "shape" in record or _is_meta(record)
    )


def read(
    path: Path, problems: ReadProblems, progress: ReadProgress | None = None
) -> Iterator[Statement]:
    """Yield each statement recorded in the trace at ``path``."""
    for statement, _record in read_records(path, problems, progress):
        yield statement


def read_records(
    path: Path, problems: ReadProblems, progress: ReadProgress | None = None
) -> Iterator[tuple[Statement, dict[str, Any]]]:
    """Yield each statement of the trace with its whole record (``measured`` and all)."""
    source = str(path)
    loads = json.JSONDecoder(parse_constant=_reject_constant).decode
    shapes: dict[Any, dict[str, Any]] = {}
    process: list[str] = []  # the part being read, after a qprof_part line
    for number, line in numbered_lines(path, progress):
        if not line.strip():
            continue
        try:
            record = loads(line)
        except (ValueError, RecursionError):  # RecursionError: nested past reason
            problems.report(_bad_line(path, number, line))
            continue
        if not isinstance(record, dict):
            problems.report(_bad_line(path, number, line))
            continue
        if "sql" not in record:
            if "shape" in record:
                shape = _shape_of(record["shape"], shapes)
                if shape is None:
                    problems.report(_unknown_shape(path, number, line))
                    continue
                record = {**shape, **record}
            elif _is_meta(record):
                _take_meta(record, shapes, process)
                continue
        statement = _statement(record, source, number)
        if statement is None:
            problems.report(_bad_line(path, number, line))
            continue
        if process and statement.thread is not None:
            statement.thread = f"{process[0]} {statement.thread}"
        if not _sane_numbers(record):
            problems.report(_bad_numbers(path, number, line))
            continue
        measured = record.get("measured")
        if isinstance(measured, dict) and isinstance(measured.get("error"), str):
            measured["error"] = _valid_text(measured["error"])  # printed in reports
        yield statement, record


def _statement(record: dict[str, Any], source: str, number: int) -> Statement | None:
    sql = record.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        return None
    try:
        params = decode_params(record.get("params"))
    except (ValueError, TypeError):
        return None
    elapsed = record.get("elapsed_ns")
    ts = record.get("ts")
    return Statement(
        sql=_valid_text(sql),
        params=params,
        source=source,
        line=number,
        context=_text_or_none(record.get("context")),
        caller=_text_or_none(record.get("caller")),
        logged_ns=elapsed if isinstance(elapsed, int) else None,
        ts=float(ts) if isinstance(ts, (int, float)) else None,
        thread=_text_or_none(record.get("thread")),
    )


_MEASURED_NUMBERS = (
    "elapsed_ns",
    "rows_returned",
    "rows_changed",
    "vm_step",
    "fullscan_step",
    "sort",
    "autoindex",
)
_MOST = 2**63 - 1
_LATEST_TS = 9e9
"""Unix seconds a trace's ``ts`` stays within (pandas' datetimes end in 2262)."""


def _sane_numbers(record: dict[str, Any]) -> bool:
    """Return False when a count or time is negative, fractional or past 64 bits, or
    ``ts`` is not a time of the last and next few centuries."""
    measured = record.get("measured")
    numbers = [record.get("elapsed_ns")]
    if isinstance(measured, dict):
        numbers += [measured.get(key) for key in _MEASURED_NUMBERS]
    for value in numbers:
        if value is not None and not (
            type(value) is int and 0 <= value <= _MOST  # not bool, not float
        ):
            return False
    ts = record.get("ts")
    return ts is None or (type(ts) in (int, float) and -_LATEST_TS < ts < _LATEST_TS)


def _shape_of(key: Any, shapes: dict[Any, dict[str, Any]]) -> dict[str, Any] | None:
    """Return the fields of shape ``key`` (None when it is not defined above)."""
    if not isinstance(key, (int, str)) or isinstance(key, bool):
        return None
    return shapes.get(key)


def _valid_text(text: str) -> str:
    """Return ``text`` with lone surrogates (JSON can spell them, UTF-8 cannot) as U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Limitation: a lone surrogate in a statement's text is read as U+FFFD, silently.
        return _SURROGATE.sub("\ufffd", text)
    return text


_SURROGATE = re.compile("[\ud800-\udfff]")


def _take_meta(
    record: dict[str, Any], shapes: dict[Any, dict[str, Any]], process: list[str]
) -> None:
    """Learn a shape's definition; forget them all where another process's part (or
    another trace) begins, and note which process that part is."""
    part = record.get(PART_KEY)
    if part is not None or TRACE_HEADER_KEY in record:
        shapes.clear()
        process[:] = []
    if isinstance(part, dict):
        process.append(str(part.get("process") or part.get("pid") or "another process"))
    shape = record.get(SHAPE_KEY)
    if isinstance(shape, dict) and isinstance(shape.get("id"), (int, str)):
        fields = dict(shape)
        shapes[fields.pop("id")] = fields


def _is_meta(record: dict[str, Any]) -> bool:
    """Return True for the header and capture's other records (``qprof_schema``, ...)."""
    return TRACE_HEADER_KEY in record or any(
        isinstance(key, str) and key.startswith("qprof_") for key in record
    )


def _reject_constant(name: str) -> float:
    """Refuse NaN and Infinity: they are not JSON, and would not be written back as JSON."""
    raise ValueError(f"{name} is not a JSON value")


def _text_or_none(value: Any) -> str | None:
    return None if value is None else _valid_text(str(value))


def _bad_line(path: Path, number: int, line: str) -> WorkloadError:
    return WorkloadError(
        path,
        number,
        'a JSON object with an "sql" string (and optional "params" list or object)',
        excerpt(line),
        "is the trace cut off, or is this another log format? (see replay's --format)",
    )


def _unknown_shape(path: Path, number: int, line: str) -> WorkloadError:
    return WorkloadError(
        path,
        number,
        'a statement whose "shape" a qprof_shape line above defines',
        excerpt(line),
        "was the trace cut, or its parts merged by hand?",
    )


def _bad_numbers(path: Path, number: int, line: str) -> WorkloadError:
    return WorkloadError(
        path,
        number,
        "counts and times that are whole numbers from 0 to 2**63 - 1, and a ts in "
        "unix seconds",
        excerpt(line),
    )
