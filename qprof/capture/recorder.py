"""The capture's recorder: statement records buffered and written as a qprof trace.

The drivers' wrappers (``qprof.capture.stdlib``, ``qprof.capture.apsw_driver``)
hand each statement to ``Recorder.add`` as a plain dict; nothing is parsed,
fingerprinted or explained here. Records are buffered in a list (appending is
atomic under the GIL, so threads need no lock) and written out in batches, at
``close`` and on SIGTERM/SIGINT, one JSON line each, so a trace cut off by a
crash still loads up to its last whole line.
"""

from __future__ import annotations

import contextvars
import importlib.util
import json
import os
import signal
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import CodeType, FrameType
from typing import IO, Any

from qprof.errors import OutputError
from qprof.trace import TRACE_HEADER_KEY, TRACE_VERSION

SCHEMA_KEY = "qprof_schema"
SUMMARY_KEY = "qprof_capture"
FLUSH_EVERY = 2000
"""Records buffered before a write."""
TEXT_LIMIT = 1000
"""Text values longer than this are shortened to ``TEXT_KEPT`` characters and a marker."""
TEXT_KEPT = 200
BLOB_LIMIT = 256
"""Blobs longer than this keep their first ``BLOB_KEPT`` bytes and their length."""
BLOB_KEPT = 64

# Frames in these packages are never "the caller": the caller is the application line
# that asked a driver or an ORM for the statement.
_SKIPPED_PACKAGES = (
    "qprof",
    "apsw",
    "sqlalchemy",
    "django",
    "_pytest",
    "pytest",
    "pluggy",
)

context_label: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "qprof_context", default=None
)


class Recorder:
    """Buffer statement records and write them to a qprof trace file.

    Raises ``OutputError`` when the file cannot be created; after that, nothing
    it does raises into the application: failures are counted in ``failures``.
    """

    def __init__(
        self, path: str | Path, context: str | None = None, **header: Any
    ) -> None:
        self.path = Path(path)
        self.default_context = context
        """The label of statements run outside any ``qprof.context`` block."""
        self.statements = 0
        self.failures = 0
        """Statements (or snapshots) the tracer could not record."""
        self.last_failure: str | None = None
        self._buffer: list[dict[str, Any]] = []
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        """Called with every record as it is taken (the pytest plugin's per-test gate)."""
        self._lock = threading.Lock()
        self._closed = False
        self._skip_code: dict[CodeType, str] = {}
        """Code object -> its short file name, or '' for a library's code."""
        self._driver_prefixes, self._stdlib_prefixes = _skipped_prefixes()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] = open(self.path, "w", encoding="utf-8")
        except OSError as error:
            raise OutputError(self.path, error.strerror or str(error)) from None
        first = {
            TRACE_HEADER_KEY: TRACE_VERSION,
            "created_by": "qprof capture",
            **header,
        }
        self._file.write(json.dumps(first) + "\n")
        self._file.flush()

    @property
    def closed(self) -> bool:
        """True once ``close`` ran: records are no longer taken."""
        return self._closed

    def add(self, record: dict[str, Any]) -> None:
        """Buffer one record; write the buffer out when it is full."""
        if self._closed:
            return
        self._buffer.append(record)
        if "sql" in record:
            self.statements += 1
        for listener in self.listeners:
            try:
                listener(record)
            except (
                Exception
            ) as error:  # a listener's failure is the tracer's, not the app's
                self.fail(error)
        if len(self._buffer) >= FLUSH_EVERY:
            self.flush()

    def add_schema(self, database: str, connection: int, sql: list[str]) -> None:
        """Buffer a snapshot of a database's schema (its CREATE statements)."""
        self.add(
            {SCHEMA_KEY: {"database": database, "connection": connection, "sql": sql}}
        )

    def label(self) -> str | None:
        """Return the context label in force in this thread and task."""
        return context_label.get() or self.default_context

    def caller(self, frame: FrameType | None) -> str | None:
        """Return ``file:line`` of the first frame outside qprof, the stdlib and drivers."""
        skip = self._skip_code
        while frame is not None:
            code = frame.f_code
            name = skip.get(code)
            if name is None:
                filename = code.co_filename
                name = skip[code] = (
                    "" if self._is_library(filename) else _short_path(filename)
                )
            if name:
                return f"{name}:{frame.f_lineno}"
            frame = frame.f_back
        return None

    def fail(self, error: BaseException) -> None:
        """Count a failure of the tracer itself (never raised into the application)."""
        self.failures += 1
        self.last_failure = f"{type(error).__name__}: {error}"

    def flush(self) -> None:
        """Write the buffered records out (safe from any thread and a signal handler)."""
        if not self._lock.acquire(timeout=5):
            return
        try:
            records, self._buffer = self._buffer, []
            if not records or self._file.closed:
                return
            lines = []
            for record in records:
                try:
                    lines.append(json.dumps(record, ensure_ascii=False, default=repr))
                except (TypeError, ValueError) as error:
                    self.fail(error)
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()
        except OSError as error:
            self.fail(error)
        finally:
            self._lock.release()

    def close(self) -> None:
        """Write everything out, with a closing summary record, and close the file."""
        if self._closed:
            return
        self.add(
            {
                SUMMARY_KEY: {
                    "statements": self.statements,
                    "failures": self.failures,
                    "last_failure": self.last_failure,
                }
            }
        )
        self.flush()
        self._closed = True
        with self._lock:
            try:
                self._file.close()
            except OSError as error:
                self.fail(error)

    def _is_library(self, filename: str) -> bool:
        if filename.startswith("<") or filename.startswith(self._driver_prefixes):
            return True
        # A system Python keeps site-packages under its stdlib folder: a package
        # installed there is the application's, unless it is one of the drivers.
        if "site-packages" in filename or "dist-packages" in filename:
            return False
        return filename.startswith(self._stdlib_prefixes)


def statement_record(
    recorder: Recorder,
    sql: str,
    params: Any,
    frame: FrameType | None,
    connection: int,
    database: str,
    driver: str,
    many: int | None,
    measured: dict[str, Any],
) -> dict[str, Any]:
    """Return the trace record of one statement, as every driver writes it."""
    record: dict[str, Any] = {"sql": sql}
    if params:
        record["params"] = encode_bindings(params)
    record["ts"] = time.time()
    record["context"] = recorder.label()
    record["caller"] = recorder.caller(frame)
    record["thread"] = threading.current_thread().name
    record["connection"] = connection
    record["database"] = database
    record["driver"] = driver
    if many is not None:
        record["executemany"] = many
    record["measured"] = measured
    return record


def shorten(value: Any) -> Any:
    """Return a JSON-safe bound value, long text and blobs shortened with a marker.

    >>> shorten("x" * 2000)[-25:]
    '…[qprof: 2000 chars long]'
    >>> shorten(b"\\x00\\xff")
    {'$blob': '00ff'}
    """
    if isinstance(value, str):
        if len(value) <= TEXT_LIMIT:
            return value
        return value[:TEXT_KEPT] + f"…[qprof: {len(value)} chars long]"
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        if len(data) <= BLOB_LIMIT:
            return {"$blob": data.hex()}
        return {"$blob": data[:BLOB_KEPT].hex(), "$length": len(data)}
    if value is None or isinstance(value, (int, float)):
        return value
    return repr(value)


def encode_bindings(params: Any) -> Any:
    """Return ``params`` (a sequence, a mapping or None) as JSON-safe ``params``."""
    if params is None:
        return None
    if isinstance(params, dict):
        return {str(k): shorten(v) for k, v in params.items()}
    if hasattr(params, "keys"):
        return {str(k): shorten(params[k]) for k in params.keys()}
    return [shorten(v) for v in params]


def install_signal_flush(recorder: Recorder) -> list[tuple[int, Any]]:
    """Flush ``recorder`` on SIGTERM and SIGINT, then do what was done before.

    Returns the previous handlers, for ``restore_signals``. Only the main thread
    may set handlers; elsewhere nothing is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        return []
    previous: list[tuple[int, Any]] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        old = signal.getsignal(signum)

        def handler(number: int, frame: FrameType | None, old: Any = old) -> None:
            recorder.flush()
            if callable(old):
                old(number, frame)
            elif old == signal.SIG_DFL:
                signal.signal(number, signal.SIG_DFL)
                os.kill(os.getpid(), number)

        try:
            signal.signal(signum, handler)
        except (ValueError, OSError):
            continue
        previous.append((signum, old))
    return previous


def restore_signals(previous: list[tuple[int, Any]]) -> None:
    """Put back the handlers ``install_signal_flush`` replaced."""
    for signum, old in previous:
        try:
            signal.signal(signum, old)
        except (ValueError, OSError, TypeError):
            pass


def _skipped_prefixes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    stdlib = set()
    for key in ("stdlib", "platstdlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            stdlib.add(os.path.join(os.path.realpath(path), ""))
            stdlib.add(os.path.join(path, ""))
    prefixes = set()
    for name in _SKIPPED_PACKAGES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        for location in spec.submodule_search_locations or []:
            prefixes.add(os.path.join(location, ""))
        if spec.origin and not spec.submodule_search_locations:
            prefixes.add(spec.origin)
    return tuple(sorted(prefixes)), tuple(sorted(stdlib))


def _short_path(filename: str) -> str:
    """Return ``filename`` relative to the working directory when it is under it."""
    try:
        relative = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if relative.startswith("..") else relative


def current_frame() -> FrameType:
    """Return the caller's frame (``sys._getframe`` is CPython's cheap way)."""
    return sys._getframe(1)
