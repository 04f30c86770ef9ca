"""The capture's recorder: statement records buffered and written as a qprof trace.

The drivers' wrappers (``qprof.capture.stdlib``, ``qprof.capture.apsw_driver``)
begin each statement's record with ``Recorder.begin`` and fill it in as it runs;
nothing is parsed, fingerprinted or explained here. Records are buffered in a
list (appending is atomic under the GIL, so threads need no lock) and written
out in batches, at ``close`` and on SIGTERM/SIGINT, one JSON line each, so a
trace cut off by a crash still loads up to its last whole line. What every run
of a statement at one caller shares (its SQL, caller, context, thread,
connection) is written once, as a ``qprof_shape`` line, and named by number.
"""

from __future__ import annotations

import atexit
import contextvars
import json
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path
from types import FrameType
from typing import IO, Any

import orjson

from qprof.capture.callers import CallerFinder
from qprof.capture.parts import part_path
from qprof.errors import OutputError
from qprof.trace import SHAPE_KEY, TRACE_HEADER_KEY, TRACE_VERSION, encode_real

SCHEMA_KEY = "qprof_schema"
SUMMARY_KEY = "qprof_capture"
FLUSH_EVERY = 2000
"""Records buffered before a write."""
SHAPES_KEPT = 50_000
"""Shapes remembered; past this many, the next statements define theirs again."""
TEXT_LIMIT = 1000
"""Text values longer than this are shortened to ``TEXT_KEPT`` characters and a marker."""
TEXT_KEPT = 200
BLOB_LIMIT = 256
"""Blobs longer than this keep their first ``BLOB_KEPT`` bytes and their length."""
BLOB_KEPT = 64

# A statement record is a list, the cheapest thing to make and fill in on the hot
# path; these are its slots. SHAPE is the part repeated by every run of one statement
# at one caller: (sql, caller, context, thread, connection, database, driver),
# written once as a qprof_shape line. The driver fills in the measurements after the statement ran.
SHAPE, PARAMS, TS, ELAPSED_NS, ROWS_RETURNED, ROWS_CHANGED, ERROR = range(7)
COUNTERS, MANY, OPEN = 7, 8, 9
"""COUNTERS: the sums of apsw's PROFILE events (``statement_counters``) or None; MANY: the
executemany count or None; OPEN: True while the application may still fetch rows."""
_SHAPE_KEYS = ("sql", "caller", "context", "thread", "connection", "database", "driver")

context_label: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "qprof_context", default=None
)
_time = time.time
_current_thread = threading.current_thread
_thread = threading.local()
"""The name of the thread (``threading.current_thread().name`` costs more)."""


class Recorder:
    """Buffer statement records and write them to a qprof trace file.

    Raises ``OutputError`` when the file cannot be created; after that, nothing
    it does raises into the application: failures are counted in ``failures``.
    """

    def __init__(
        self,
        path: str | Path,
        context: str | None = None,
        lazy: bool = False,
        **header: Any,
    ) -> None:
        self.path = Path(path)
        self.default_context = context
        """The label of statements run outside any ``qprof.context`` block."""
        self.statements = 0
        self.failures = 0
        """Statements (or snapshots) the tracer could not record."""
        self.last_failure: str | None = None
        self.listeners: list[Callable[[Any], None]] = []
        """Called with every record as it is taken (the pytest plugin's per-test gate)."""
        self._buffer: list[Any] = []
        """Statement records (lists) and other records (dicts), oldest first; only
        ``flush`` removes from it, from the front, so threads appending need no lock."""
        self._lock = threading.Lock()
        self._flush_at = FLUSH_EVERY
        """Buffer length at which ``begin`` flushes (raised while records wait)."""
        self.closed = False
        """True once ``close`` ran: records are no longer taken."""
        self.paused = False
        """While True, connections opened are not traced (qprof's own, during a run)."""
        self.eager = False
        """Write each statement as the next one begins (a multiprocessing worker,
        which its pool may end at any moment)."""
        self.signal_handlers: list[tuple[int, Any]] = []
        """The handlers ``install_signal_flush`` replaced (put back in a forked child)."""
        self._in_flush = threading.local()
        """``active`` is True in a thread inside ``flush``."""
        self.pending_signal: tuple[int, FrameType | None, Any] | None = None
        """A signal that arrived during this thread's own flush, handled at its end."""
        self._shapes: dict[tuple[Any, ...], int] = {}
        """A record's SHAPE -> its number in the trace (its qprof_shape line is written)."""
        finder = CallerFinder()
        self.caller: Callable[[FrameType | None], str | None] = finder.find
        """Return the ``file:line`` that asked for a statement (``callers``)."""
        self._known_callers = finder.direct
        """The callers ``caller`` found from the first frame alone, by frame key."""
        first = {
            TRACE_HEADER_KEY: TRACE_VERSION,
            "created_by": "qprof capture",
            **header,
        }
        self._header = first
        self._file: IO[bytes] | None = None
        """Opened at once, or with ``lazy`` (a part of a trace, in a process that
        may never run a statement) when the first statement is written."""
        if not lazy:
            try:
                self._open()
            except OSError as error:
                reason = error.strerror or str(error)
                if isinstance(error, (FileExistsError, NotADirectoryError)):
                    reason = "a file is in the way of its folder"
                raise OutputError(self.path, reason) from None
        _recorders.add(self)

    def begin(
        self,
        sql: str,
        params: Any,
        frame: FrameType | None,
        connection: int,
        database: str,
        driver: str,
        many: int | None = None,
    ) -> list[Any]:
        """Buffer the record of a statement about to run and return it, to fill in.

        Parameters are encoded when the record is written; a list or dict of them
        is copied now, in case the application reuses it.
        """
        if type(params) is not tuple:
            if type(params) is list:
                params = tuple(params)
            elif type(params) is dict:
                params = dict(params)
        try:
            thread = _thread.name
        except AttributeError:
            # Limitation: a thread renamed after its first statement keeps its first name.
            thread = _thread.name = _current_thread().name
        context = context_label.get() or self.default_context
        caller = None
        if frame is not None:  # keyed as CallerFinder.direct is: no call on a hit
            caller = self._known_callers.get(id(frame.f_code) | frame.f_lasti << 48)
        if caller is None:
            caller = self.caller(frame)
        shape = (sql, caller, context, thread, connection, database, driver)
        record = [shape, params, _time(), 0, 0, 0, None, None, many, True]
        buffer = self._buffer
        if len(buffer) >= self._flush_at:
            self.flush(everything=False)
        buffer.append(record)
        self.statements += 1
        if self.listeners:
            self._tell(record)
        return record

    def add(self, record: dict[str, Any]) -> None:
        """Buffer a record that is not a statement (a schema snapshot, the summary)."""
        if self.closed:
            return
        self._buffer.append(record)
        if self.listeners:
            self._tell(record)

    def add_schema(self, database: str, connection: int, sql: list[str]) -> None:
        """Buffer a snapshot of a database's schema (its CREATE statements)."""
        self.add(
            {SCHEMA_KEY: {"database": database, "connection": connection, "sql": sql}}
        )

    def fail(self, error: BaseException, count: int = 1) -> None:
        """Count a failure of the tracer itself (never raised into the application)."""
        self.failures += max(count, 1)
        self.last_failure = f"{type(error).__name__}: {error}"

    def flush(self, everything: bool = True, wait: bool = True) -> None:
        """Write buffered records out (safe from any thread and a signal handler;
        ``wait`` false waits a second at most for another thread's flush).

        With ``everything`` false (the hot path's flush), writing stops at the
        oldest statement whose rows are still being fetched, so its counts are
        whole when written and the trace keeps the order statements began in;
        past twice ``FLUSH_EVERY`` records the oldest are written regardless.
        """
        # Marked before the lock is taken: a signal between the two is deferred too.
        self._in_flush.active = True
        if not self._lock.acquire(timeout=5 if wait else 1):
            self._in_flush.active = False
            return
        try:
            buffer = self._buffer
            count = len(buffer) if everything else self._writable(buffer)
            records = buffer[:count]
            if self._file is None and not any(type(r) is list for r in records):
                return  # a lazy part with no statement yet: no file, records kept
            del buffer[:count]
            # Records kept back wait for a quarter more before the next try.
            self._flush_at = (
                1 if self.eager else max(FLUSH_EVERY, len(buffer) + FLUSH_EVERY // 4)
            )
            file = self._file or self._open()
            if not records or file.closed:
                return
            # Copied into one buffer at once: orjson's own results are slow to keep.
            out = bytearray()
            for record in records:
                if type(record) is list and record[MANY] == 0:
                    continue  # an executemany of no sets ran nothing
                try:
                    out += self.line(record)
                except Exception as error:  # a value whose repr raises, say: the
                    self.fail(error)  # record is lost, the application is not
                    continue
                out += b"\n"
            file.write(out)
            file.flush()
        except OSError as error:
            # The batch is lost (a full disk): every statement in it counts, and
            # shapes it defined are defined again by their next statement.
            self.fail(error, sum(type(r) is list for r in records))
            self._shapes.clear()
        finally:
            self._lock.release()
            self._in_flush.active = False
            pending, self.pending_signal = self.pending_signal, None
            if pending is not None:
                _handle_as_before(*pending)  # the signal that cut into this flush

    def line(self, record: Any) -> bytes:
        """Return the JSON line of a buffered record (UTF-8, no newline).

        The first statement of a shape is preceded by the shape's own line
        (``qprof_shape``); the statements name it by number.
        """
        if type(record) is not list:
            return _dumps(record)
        shape = record[SHAPE]
        number = self._shapes.get(shape)
        definition = b""
        if number is None:
            if len(self._shapes) >= SHAPES_KEPT:
                self._shapes.clear()  # SQL with values inlined: shapes without end
            number = len(self._shapes) + 1
            named = dict(zip(_SHAPE_KEYS, shape, strict=True))
            fields = {SHAPE_KEY: {"id": number, **named}}
            try:
                definition = orjson.dumps(fields) + b"\n"
            except TypeError:  # a lone surrogate in the SQL, say
                definition = _dumps(fields) + b"\n"
        line = {"shape": number, "ts": record[TS], "measured": _measured(record)}
        params = record[PARAMS]
        plain = True
        if params:
            line["params"] = params
            # orjson would write a date or a UUID its own way, not as bound.
            kind = type(params)
            values = (
                params if kind is tuple else params.values() if kind is dict else ()
            )
            plain = kind is tuple or kind is dict
            for value in values:
                if type(value) not in _PLAIN:
                    plain = False
                    break
        if record[MANY] is not None:
            line["executemany"] = record[MANY]
        try:
            text = orjson.dumps(line)
            # orjson writes NaN and infinities as null, and long values whole: such
            # values are encoded by hand (a null of the values' own is, harmlessly).
            fast = plain and (
                not params or len(text) <= TEXT_LIMIT and b"null" not in text
            )
        except TypeError:  # a lone surrogate, say
            fast = False
        if not fast:
            if params:
                adapt = _sqlite3_adapt if shape[6] == "sqlite3" else None
                line["params"] = encode_bindings(params, adapt)
                if line["params"] is None:
                    del line["params"]
            text = _dumps(line)
        if definition:
            self._shapes[shape] = number
        return definition + text

    def whole_line(self, record: list[Any]) -> bytes:
        """Return a statement record's line with its shape written out in it."""
        return _dumps(_record_dict(record))

    def close(self) -> None:
        """Write everything out, with a closing summary record, and close the file."""
        if self.closed:
            return
        self.flush()  # first: a statement that fails to be written counts below
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
        self.closed = True
        with self._lock:
            try:
                if self._file is not None:
                    self._file.close()
            except OSError as error:
                self.fail(error)

    def _open(self) -> IO[bytes]:
        """Create the trace file, write its header and return it; raises ``OSError``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = self._file = open(self.path, "wb")
        file.write(_dumps(self._header) + b"\n")
        file.flush()
        return file

    def continue_in_child(self) -> None:
        """Go on in a forked child: into a part file of its own, without the parent's
        buffered records (the parent writes those), flushed when the child exits."""
        if self.closed:
            return
        self._lock = threading.Lock()  # held by the parent's thread at the fork
        self._in_flush = threading.local()
        self.pending_signal = None
        self._buffer.clear()
        self._shapes = {}  # the part file defines its own
        # Limitation: a forked child gets its signal handlers back, so that a pool's
        # terminate() ends it at once as without qprof: its last statement is lost.
        restore_signals(self.signal_handlers)
        self.signal_handlers = []
        self.statements = 0
        self.failures = 0
        # Limitation: a child still running, statement-less, when the trace ends is not
        # warned about; what it runs later goes into a part no trace merges.
        inherited, self._file = self._file, None  # opened with its first statement
        self.path = part_path(self.path, f"pid{os.getpid()}")
        self._header = {**self._header, "pid": os.getpid()}
        try:
            if inherited is not None:
                inherited.close()  # the child's copy of the descriptor; its buffer is empty
        except OSError:
            pass
        atexit.register(self.close)
        # multiprocessing's forked workers leave by os._exit, past atexit, running
        # its finalizers first; it clears those of the parent after the fork, then
        # runs its after-fork hooks: the finalizer is made in one.
        util = sys.modules.get("multiprocessing.util")
        if util is not None:
            try:
                util.register_after_fork(self, _close_at_worker_exit)
            except Exception as error:
                self.fail(error)

    def _tell(self, record: Any) -> None:
        for listener in self.listeners:
            try:
                listener(record)
            except Exception as error:  # a listener's failure is the tracer's
                self.fail(error)

    def _writable(self, buffer: list[Any]) -> int:
        """Return how many of the oldest records can be written now."""
        if len(buffer) >= 2 * FLUSH_EVERY:
            return FLUSH_EVERY
        for index, record in enumerate(buffer):
            if type(record) is list and record[OPEN]:
                return index
        return len(buffer)


_recorders: weakref.WeakSet[Recorder] = weakref.WeakSet()


def _close_at_worker_exit(recorder: Recorder) -> None:
    from multiprocessing import util

    util.Finalize(recorder, recorder.close, exitpriority=0)
    recorder.eager = True  # terminate() ends a pool's workers with a SIGTERM
    recorder._flush_at = 1


_held_at_fork = threading.local()
"""The recorders whose lock the forking thread holds (two threads may fork at once)."""


def _before_fork() -> None:
    # No write is under way across the fork, and the file's buffer is empty, so the
    # child's copy of the file object can be closed without writing anything twice.
    held = _held_at_fork.recorders = []
    for recorder in list(_recorders):
        if recorder.closed or not recorder._lock.acquire(timeout=5):
            continue
        held.append(recorder)
        try:
            if recorder._file is not None:
                recorder._file.flush()
        except (OSError, ValueError):
            pass


def _after_fork_in_parent() -> None:
    for recorder in getattr(_held_at_fork, "recorders", ()):
        recorder._lock.release()
    _held_at_fork.recorders = []


def _after_fork_in_child() -> None:
    _held_at_fork.recorders = []
    for recorder in list(_recorders):
        recorder.continue_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )


class _SchemaChanges(dict[str, bool]):
    """SQL text -> whether it is a CREATE, DROP or ALTER statement, worked out once."""

    def __missing__(self, sql: str) -> bool:
        if len(self) > 10_000:
            self.clear()  # SQL with values inlined: texts without end
        known = self[sql] = sql.lstrip()[:5].upper() in ("CREAT", "DROP ", "ALTER")
        return known


changes_schema = _SchemaChanges()
"""``changes_schema[sql]``: True for a statement that may change the schema (a
look-up, not a call, on the hot path)."""


class CountedSets:
    """An iterator over parameter sets that keeps the first and counts them all."""

    def __init__(self, sets: Any) -> None:
        self._sets = iter(sets)
        self.first: Any = None
        self.count = 0

    def __iter__(self) -> CountedSets:
        return self

    def __next__(self) -> Any:
        values = next(self._sets)
        if not self.count:  # copied, in case the application reuses it
            self.first = dict(values) if isinstance(values, dict) else tuple(values)
        self.count += 1
        return values


def detached_record() -> list[Any]:
    """Return a statement record that is in no buffer (for a statement not recorded)."""
    return [(), None, 0.0, 0, 0, 0, None, None, None, False]


def statement_context(record: Any) -> str | None:
    """Return the context label of a buffered statement record (None for others)."""
    return record[SHAPE][2] if type(record) is list else None


def shorten(value: Any, adapt: Callable[[Any], Any] | None = None) -> Any:
    """Return a JSON-safe bound value, long text and blobs shortened with a marker.

    ``adapt`` turns a value of another type into what the driver bound
    (``sqlite3.adapt``: registered adapters, ``__conform__``).

    >>> shorten("x" * 2000)[-25:]
    '…[qprof: 2000 chars long]'
    >>> shorten(b"\\x00\\xff")
    {'$blob': '00ff'}
    """
    if adapt is not None and type(value) not in _PLAIN:
        try:
            value = adapt(value)
        except Exception:
            pass  # the driver refused it too: the statement failed
    if isinstance(value, str):
        # Limitation: a replay of the trace binds a shortened value as shortened.
        if len(value) <= TEXT_LIMIT:
            return value
        return value[:TEXT_KEPT] + f"…[qprof: {len(value)} chars long]"
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        if len(data) <= BLOB_LIMIT:
            return {"$blob": data.hex()}
        return {"$blob": data[:BLOB_KEPT].hex(), "$length": len(data)}
    if isinstance(value, float):
        return encode_real(value)
    if value is None or isinstance(value, int):
        return value
    return _safe_repr(value)


def _safe_repr(value: Any) -> str:
    """Return ``repr(value)``, or its type's name when its ``__repr__`` raises."""
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__}>"


def encode_bindings(params: Any, adapt: Callable[[Any], Any] | None = None) -> Any:
    """Return ``params`` (a sequence, a mapping or None) as JSON-safe ``params``.

    As the sqlite3 module binds them: a dict by name, and anything else that is
    a sequence (a ``sqlite3.Row`` among them) by position. Bindings that are
    neither (the driver refused them) are recorded as none.
    """
    if params is None:
        return None
    if isinstance(params, dict):
        return {str(k): shorten(v, adapt) for k, v in params.items()}
    if isinstance(params, (list, tuple)) or hasattr(params, "__len__"):
        try:
            return [shorten(params[i], adapt) for i in range(len(params))]
        except (TypeError, KeyError, IndexError):
            pass
    try:
        if hasattr(params, "keys"):
            return {str(k): shorten(params[k], adapt) for k in params.keys()}
        return [shorten(v, adapt) for v in params]
    except Exception:
        return None


_PLAIN = frozenset((int, float, str, bool, type(None)))
"""Types bound as they are, which orjson writes as they were bound."""


def statement_counters(events: Any, sql: str) -> tuple[int, int, int, int]:
    """Return the statement's counters (VM steps, full-scan steps, sorts, automatic
    index rows): its PROFILE events summed.

    An event whose SQL is not part of the statement's came from another cursor of
    the same connection and is left out; a counter an event lacks counts 0.
    """
    if len(events) == 1:  # the common case, made short
        event = events[0]
        try:
            if event["sql"] in sql:
                return _pick_counters(event["stmt_status"])  # type: ignore[no-any-return]
        except (KeyError, TypeError):
            pass
    vm_step = fullscan_step = sort = autoindex = 0
    for event in events:
        # Limitation: another cursor of the connection finishing the same SQL while
        # this statement was read adds its counters here (events carry no cursor).
        if event.get("sql", "") not in sql:
            continue
        status = event.get("stmt_status") or {}
        try:
            vm, fullscan, sorts, autoindexes = _pick_counters(status)
        except KeyError:
            vm, fullscan, sorts, autoindexes = (
                status.get(name, 0) for name in _COUNTER_NAMES
            )
        vm_step += vm
        fullscan_step += fullscan
        sort += sorts
        autoindex += autoindexes
    return vm_step, fullscan_step, sort, autoindex


_COUNTER_NAMES = (
    "SQLITE_STMTSTATUS_VM_STEP",
    "SQLITE_STMTSTATUS_FULLSCAN_STEP",
    "SQLITE_STMTSTATUS_SORT",
    "SQLITE_STMTSTATUS_AUTOINDEX",
)
_pick_counters = itemgetter(*_COUNTER_NAMES)


def _measured(record: list[Any]) -> dict[str, Any]:
    """Return what was measured of a statement (``error`` only if any)."""
    measured = {
        "elapsed_ns": record[ELAPSED_NS],
        "rows_returned": record[ROWS_RETURNED],
        "rows_changed": record[ROWS_CHANGED],
    }
    if record[ERROR] is not None:
        measured["error"] = record[ERROR]
    if record[COUNTERS] is not None:
        (
            measured["vm_step"],
            measured["fullscan_step"],
            measured["sort"],
            measured["autoindex"],
        ) = record[COUNTERS]
    return measured


def _record_dict(record: list[Any]) -> dict[str, Any]:
    """Return a statement record as the dict its whole JSON line holds."""
    line: dict[str, Any] = dict(zip(_SHAPE_KEYS, record[SHAPE], strict=True))
    line.update(ts=record[TS], measured=_measured(record))
    if record[PARAMS]:
        adapt = _sqlite3_adapt if record[SHAPE][6] == "sqlite3" else None
        encoded = encode_bindings(record[PARAMS], adapt)
        if encoded is not None:
            line["params"] = encoded
    if record[MANY] is not None:
        line["executemany"] = record[MANY]
    return line


def _sqlite3_adapt(value: Any) -> Any:
    """Return ``value`` as the sqlite3 module binds it (its adapters, ``__conform__``)."""
    # Limitation: adapted when written: a value changed since it was bound is recorded changed.
    import sqlite3

    return sqlite3.adapt(value, sqlite3.PrepareProtocol)


def _dumps(value: Any) -> bytes:
    """Return ``value`` as ASCII JSON (lone surrogates escaped); odd types by repr."""
    return _encode(value).encode("ascii")


_encode = json.JSONEncoder(default=_safe_repr, allow_nan=False).encode


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
            if getattr(recorder._in_flush, "active", False):
                # It cut into this thread's own flush (at exit, say): that flush ends
                # first, then the signal is handled, so its batch is not lost.
                recorder.pending_signal = (number, frame, old)
                return
            recorder.flush(wait=False)  # waits a second at most for another thread's
            _handle_as_before(number, frame, old)

        try:
            signal.signal(signum, handler)
        except (ValueError, OSError):
            continue
        previous.append((signum, old))
    recorder.signal_handlers = previous
    return previous


def _handle_as_before(number: int, frame: FrameType | None, old: Any) -> None:
    """Do what the handler qprof replaced would have done with signal ``number``."""
    if callable(old):
        old(number, frame)
    elif old == signal.SIG_DFL:
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)


def restore_signals(previous: list[tuple[int, Any]]) -> None:
    """Put back the handlers ``install_signal_flush`` replaced."""
    for signum, old in previous:
        try:
            signal.signal(signum, old)
        except (ValueError, OSError, TypeError):
            pass
