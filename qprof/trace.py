"""The statement record and qprof's own trace file (JSON Lines).

A trace is an append-only text file, one JSON object a line, so that a trace cut
off mid-write still loads up to its last whole line. The first line may be a
header, ``{"qprof_trace": 2, ...}``; every other line is one statement::

    {"sql": "SELECT * FROM t WHERE id = ?", "params": [3], "context": "GET /t/3"}

A captured trace writes what many statements share once, as a numbered shape,
``{"qprof_shape": {"id": 3, "sql": ..., "caller": ..., "thread": ...}}``, and
its statements name it, ``{"shape": 3, "params": [7], "ts": ...}``: the
statement is the shape's keys with its own. A ``{"qprof_part": ...}`` line
(where the trace of another process was appended) starts a new numbering.

``params`` is a list for ``?``/``?NNN`` placeholders or an object for named
ones; blobs are written as ``{"$blob": "<hex>"}`` and infinities, which JSON
lacks, as ``{"$real": "inf"}`` or ``"-inf"``. Optional keys: ``context``,
``caller`` (``file:line``), ``ts`` (unix seconds), ``elapsed_ns`` (the time the
application saw). A replay's ``--out`` file adds its measurements under
``measured``; a reader ignores keys it does not know.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from qprof.errors import OutputError

TRACE_HEADER_KEY = "qprof_trace"
SHAPE_KEY = "qprof_shape"
PART_KEY = "qprof_part"
TRACE_VERSION = 2
"""2: statements may name a shape (1 had none)."""

Params = tuple[Any, ...] | dict[str, Any] | None


@dataclass(slots=True)
class Statement:
    """One statement of a workload, as a reader found it."""

    sql: str
    """The SQL text, with placeholders or with literals inline."""
    params: Params
    """Bound values: a tuple for positional placeholders, a dict for named ones."""
    source: str
    """The workload file the statement came from."""
    line: int
    """The 1-based line of ``source`` where the statement starts."""
    context: str | None = None
    """A label of where it ran (a request, a test id), when the log says."""
    caller: str | None = None
    """The application's ``file:line`` that sent it, when known."""
    logged_ns: int | None = None
    """The time the log recorded for it, in nanoseconds, when it has one."""
    ts: float | None = None
    """When it ran, in unix seconds, when the log says."""
    thread: str | None = None
    """The thread that sent it (``pid123 MainThread`` in a merged part of another
    process), when a capture says: unlabelled statements of different threads are
    never one loop."""

    @property
    def location(self) -> str:
        """Return ``source:line``."""
        return f"{self.source}:{self.line}"


def decode_params(value: Any) -> Params:
    """Turn JSON ``params`` into bindings apsw accepts.

    Raises ``ValueError`` when the value is neither a list, an object nor null.

    >>> decode_params([1, {"$blob": "00ff"}])
    (1, b'\\x00\\xff')
    """
    if value is None:
        return None
    if isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)):
                return tuple(_decode_value(v) for v in value)
        return tuple(value)
    if isinstance(value, dict):
        return {str(k): _decode_value(v) for k, v in value.items()}
    raise ValueError(
        f"params must be a list, an object or null, not {type(value).__name__}"
    )


def encode_params(params: Params) -> list[Any] | dict[str, Any] | None:
    """Turn bindings into JSON-safe ``params`` (the inverse of ``decode_params``)."""
    if params is None:
        return None
    if isinstance(params, dict):
        return {k: _encode_value(v) for k, v in params.items()}
    return [_encode_value(v) for v in params]


def encode_real(value: float) -> Any:
    """Return a float as JSON can hold it: NaN as null (SQLite binds NaN as NULL).

    >>> encode_real(float("-inf")), encode_real(float("nan")), encode_real(2.5)
    ({'$real': '-inf'}, None, 2.5)
    """
    if value != value:
        return None
    if value in (_INFINITY, -_INFINITY):
        return {"$real": "inf" if value > 0 else "-inf"}
    return value


_INFINITY = float("inf")


def is_capture(path: str | Path) -> bool:
    """Return True when the file at ``path`` begins with the header capture writes
    (``"created_by": "qprof capture"``, or ``"qprof pytest (xdist)"`` merged)."""
    try:
        with open(path, "rb") as file:
            header = json.loads(file.readline(4096))
    except (OSError, ValueError):
        return False
    if not isinstance(header, dict) or TRACE_HEADER_KEY not in header:
        return False
    return str(header.get("created_by", "")).startswith(
        ("qprof capture", "qprof pytest")
    )


def has_statement_lines(path: str | Path) -> bool:
    """Return True when the trace at ``path`` holds a statement line (False when unreadable)."""
    try:
        with open(path, "rb") as lines:
            return any(line.startswith((b'{"sql"', b'{"shape"')) for line in lines)
    except OSError:
        return False


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and "$blob" in value:
        return bytes.fromhex(value["$blob"])
    if isinstance(value, dict) and value.get("$real") in ("inf", "-inf"):
        return float(value["$real"])
    if isinstance(value, (list, dict)):
        raise ValueError(
            "a bound value must be a number, a string, null, a $blob or a $real"
        )
    return value


def _encode_value(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$blob": bytes(value).hex()}
    if isinstance(value, float):
        return encode_real(value)
    return value


class TraceWriter:
    """Write statement records to a qprof trace, one JSON line each.

    Use as a context manager; the file is flushed and closed on exit.
    """

    def __init__(self, path: str | Path, **header: Any) -> None:
        self.path = Path(path)
        try:
            # A lone surrogate is written as its JSON escape (\udXXX), all it can be.
            self._file: IO[str] = open(
                self.path, "w", encoding="utf-8", errors="backslashreplace"
            )
        except OSError as error:
            raise OutputError(self.path, error.strerror or str(error)) from None
        self._write(json.dumps({TRACE_HEADER_KEY: TRACE_VERSION, **header}) + "\n")

    def write(self, statement: Statement, **extra: Any) -> None:
        """Append ``statement`` with any ``extra`` keys (such as ``measured``)."""
        record: dict[str, Any] = {"sql": statement.sql}
        if statement.params is not None:
            record["params"] = encode_params(statement.params)
        for key in ("context", "caller", "ts"):
            value = getattr(statement, key)
            if value is not None:
                record[key] = value
        if statement.logged_ns is not None:
            record["elapsed_ns"] = statement.logged_ns
        record.update(extra)
        self._write(json.dumps(record, ensure_ascii=False) + "\n")

    def close(self) -> None:
        """Flush and close the file."""
        try:
            self._file.close()
        except OSError as error:
            raise OutputError(self.path, error.strerror or str(error)) from None

    def _write(self, text: str) -> None:
        try:
            self._file.write(text)
        except OSError as error:
            raise OutputError(self.path, error.strerror or str(error)) from None

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
