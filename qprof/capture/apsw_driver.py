"""Capture for apsw: every new connection through ``apsw.connection_hooks``.

Each traced connection gets a cursor factory, a subclass of its own, whose
``execute``/``executemany`` time the statement and whose iteration counts the
rows as the application fetches them. SQLite's statement counters come from a
``trace_v2`` PROFILE callback that is a C-level ``deque.append``: no Python
runs inside ``sqlite3_step`` (where a garbage collection that closes another
shared-cache connection would deadlock); the events that arrived while a
statement ran are handed to its record when it finishes, and summed, leaving
out those of other statements by SQL text, when the record is written.
"""

from __future__ import annotations

import sys
import time
import weakref
from collections import deque
from collections.abc import Iterator
from typing import Any

import apsw

from qprof.capture.recorder import (
    COUNTERS,
    ELAPSED_NS,
    ERROR,
    MANY,
    OPEN,
    PARAMS,
    ROWS_CHANGED,
    ROWS_RETURNED,
    SHAPE,
    CountedSets,
    Recorder,
    changes_schema,
    detached_record,
    statement_counters,
)

perf_counter_ns = time.perf_counter_ns
_getframe = sys._getframe
_execute = apsw.Cursor.execute
_executemany = apsw.Cursor.executemany
_next = apsw.Cursor.__next__
_iter = apsw.Cursor.__iter__
_fetchall = apsw.Cursor.fetchall
_fetchone = apsw.Cursor.fetchone
_get = apsw.Cursor.get.__get__  # type: ignore[attr-defined]
_SCHEMA_SQL = "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
_EVENTS_KEPT = 256

active: Recorder | None = None
_connections: weakref.WeakSet[apsw.Connection] = weakref.WeakSet()
_ids = iter(range(1_000_000_001, sys.maxsize))


class ConnectionState:
    """What the tracer keeps about one traced apsw connection."""

    __slots__ = ("recorder", "id", "database", "dirty", "events", "counters")

    def __init__(self, recorder: Recorder, database: str, counters: bool) -> None:
        self.recorder = recorder
        """Where its statements go."""
        self.id = next(_ids)
        """A number unique in this process (apsw's start at 1,000,000,001)."""
        self.database = database
        """The database file, or ``:memory:``."""
        self.dirty = True
        """The schema may have changed since the last snapshot."""
        self.events: deque[dict[str, Any]] = deque(maxlen=_EVENTS_KEPT)
        """PROFILE events not yet matched to a statement."""
        self.counters = counters
        """Whether the PROFILE callback is registered."""


def install(recorder: Recorder, counters: bool = True) -> None:
    """Trace every apsw connection opened from now on into ``recorder``."""
    global active
    active = recorder
    hook = _hook_with_counters if counters else _hook_without_counters
    if hook not in apsw.connection_hooks:
        apsw.connection_hooks.append(hook)


def uninstall() -> None:
    """Stop tracing new connections; snapshot the schemas of those still open."""
    global active
    for hook in (_hook_with_counters, _hook_without_counters):
        while hook in apsw.connection_hooks:
            apsw.connection_hooks.remove(hook)
    for connection in list(_connections):
        state = _state_of(connection)
        if state is not None and state.recorder is active:
            snapshot_schema(connection, state)
    active = None


def attach_connection(
    connection: apsw.Connection, recorder: Recorder, counters: bool = True
) -> None:
    """Trace an existing apsw connection into ``recorder``."""
    state = ConnectionState(recorder, connection.filename or ":memory:", counters)
    base = connection.cursor_factory
    if isinstance(base, type) and issubclass(base, TracingCursor):
        # Traced before (attached twice, or in an earlier trace): trace the
        # application's own cursor class again, under this trace.
        base = next(c for c in base.__mro__ if not issubclass(c, TracingCursor))
    if not (isinstance(base, type) and issubclass(base, apsw.Cursor)):
        # Limitation: a cursor factory that is not an apsw.Cursor subclass is left untraced.
        return
    connection.cursor_factory = type(
        "TracedCursor", (TracingCursor, base), {"_qprof": state}
    )
    if counters:
        connection.trace_v2(apsw.SQLITE_TRACE_PROFILE, state.events.append, id="qprof")
    _connections.add(connection)


def snapshot_schema(connection: apsw.Connection, state: ConnectionState) -> None:
    """Record the CREATE statements of the connection's main database."""
    state.dirty = False
    try:
        sql = [str(row[0]) for row in apsw.Cursor(connection).execute(_SCHEMA_SQL)]
    except (apsw.ConnectionClosedError, apsw.ThreadingViolationError):
        return
    except Exception as error:
        state.recorder.fail(error)
        return
    state.recorder.add_schema(state.database, state.id, sql)


def _hook_with_counters(connection: apsw.Connection) -> None:
    _hook(connection, True)


def _hook_without_counters(connection: apsw.Connection) -> None:
    _hook(connection, False)


def _hook(connection: apsw.Connection, counters: bool) -> None:
    recorder = active
    if recorder is None or recorder.closed or recorder.paused:
        return
    try:
        attach_connection(connection, recorder, counters)
    except Exception as error:  # the tracer never breaks the application
        recorder.fail(error)


def _state_of(connection: apsw.Connection) -> ConnectionState | None:
    factory = getattr(connection, "cursor_factory", None)
    return getattr(factory, "_qprof", None)


class TracingCursor(apsw.Cursor):
    """An apsw cursor that records each statement and counts rows as fetched."""

    _qprof: ConnectionState
    _qprof_record: list[Any] | None = None
    """The record of the statement whose rows are being fetched, if any."""
    _qprof_changes: int | None = 0
    """The connection's total_changes before the statement (None: it was closed)."""

    def execute(self, statements: str, bindings: Any = None, **kwargs: Any) -> Any:
        """Run ``statements`` as ``apsw.Cursor.execute`` does, and record them."""
        if self._qprof.recorder.closed:
            return _execute(self, statements, bindings, **kwargs)
        record = self._qprof_begin(statements, bindings, _getframe(1))
        start = perf_counter_ns()
        try:
            _execute(self, statements, bindings, **kwargs)
        except BaseException as error:
            self._qprof_failed(record, start, error)
            raise
        return self._qprof_executed(record, start)

    def executemany(
        self, statements: str, sequenceofbindings: Any, **kwargs: Any
    ) -> Any:
        """Run ``statements`` for each set of bindings, recorded as one statement."""
        if self._qprof.recorder.closed:
            return _executemany(self, statements, sequenceofbindings, **kwargs)
        bindings = sequenceofbindings
        counted = None
        if isinstance(bindings, (list, tuple)):
            first, many = (bindings[0] if bindings else None), len(bindings)
        else:  # a generator: counted as the driver takes its sets
            counted = CountedSets(bindings)
            bindings, first, many = counted, None, None
        record = self._qprof_begin(statements, first, _getframe(1), many)
        start = perf_counter_ns()
        try:
            _executemany(self, statements, bindings, **kwargs)
        except BaseException as error:
            self._qprof_failed(record, start, error)
            raise
        finally:
            if counted is not None:
                record[PARAMS], record[MANY] = counted.first, counted.count
        return self._qprof_executed(record, start)

    def _qprof_executed(self, record: list[Any], start: int) -> Any:
        """Fill in the time; leave the record open while rows remain to be fetched."""
        record[ELAPSED_NS] = perf_counter_ns() - start
        try:
            pending = self.has_vdbe
        except apsw.ExecutionCompleteError:
            pending = False  # every statement ran to completion inside execute
        except Exception as error:
            self._qprof.recorder.fail(error)
            pending = False
        if pending:
            self._qprof_record = record
        else:
            self._qprof_done(record)
        return self

    def _qprof_failed(
        self, record: list[Any], start: int, error: BaseException
    ) -> None:
        record[ELAPSED_NS] = perf_counter_ns() - start
        record[ERROR] = f"{type(error).__name__}: {error}"
        self._qprof_done(record)

    def __iter__(self) -> Any:
        # Limitation: rows taken with next(cursor) itself are not counted (apsw's own
        # __next__ runs; defining one here would make apsw's fetchall call Python per row).
        record = self._qprof_record
        if record is None:
            return self
        return self._qprof_rows(record)

    def _qprof_rows(self, record: list[Any]) -> Iterator[Any]:
        """Yield the remaining rows, counting them and the time spent fetching them.

        A generator rather than a ``__next__`` of this class: apsw's own
        ``fetchall`` would call a Python ``__next__`` for every row.
        """
        while self._qprof_record is record:
            start = perf_counter_ns()
            try:
                row = _next(self)
            except StopIteration:
                record[ELAPSED_NS] += perf_counter_ns() - start
                self._qprof_done(record)
                return
            record[ELAPSED_NS] += perf_counter_ns() - start
            record[ROWS_RETURNED] += 1
            yield row
        yield from _iter(self)  # the rest of the rows went on without this generator

    def fetchall(self) -> list[Any]:
        """Return the remaining rows, counting them."""
        record = self._qprof_record
        if record is None:
            return _fetchall(self)
        # apsw's fetchall iterates the cursor: with no record, __iter__ is apsw's own.
        self._qprof_record = None
        start = perf_counter_ns()
        try:
            rows = _fetchall(self)
        finally:
            record[ELAPSED_NS] += perf_counter_ns() - start
            self._qprof_done(record)
        record[ROWS_RETURNED] += len(rows)
        return rows

    def fetchone(self) -> Any:
        """Return the next row, or None at the end, counting it."""
        record = self._qprof_record
        if record is None:
            return _fetchone(self)
        start = perf_counter_ns()
        try:
            row = _fetchone(self)
        except BaseException:
            record[ELAPSED_NS] += perf_counter_ns() - start
            self._qprof_done(record)
            raise
        record[ELAPSED_NS] += perf_counter_ns() - start
        if row is None:
            self._qprof_done(record)
        else:
            record[ROWS_RETURNED] += 1
        return row

    @property
    def get(self) -> Any:  # type: ignore[override]
        """Return the remaining rows as ``apsw.Cursor.get`` does, counting them."""
        record = self._qprof_record
        self._qprof_record = None  # apsw's get iterates the cursor, as fetchall does
        value = _get(self)
        if record is not None:
            if isinstance(value, list):
                record[ROWS_RETURNED] += len(value)
            elif value is not None:
                record[ROWS_RETURNED] += 1
            self._qprof_done(record)
        return value

    def _qprof_begin(
        self, sql: Any, bindings: Any, frame: Any, many: int | None = None
    ) -> list[Any]:
        state = self._qprof
        try:
            previous = self._qprof_record
            if previous is not None:
                self._qprof_done(previous)
            try:
                connection = self.connection
                self._qprof_changes = connection.total_changes()
            except apsw.Error:  # a closed cursor or connection: execute says so itself
                self._qprof_changes = None
            else:
                if state.dirty:
                    snapshot_schema(connection, state)
            if type(sql) is not str:
                sql = str(sql)
            if changes_schema[sql]:
                state.dirty = True
            if state.counters:
                state.events.clear()  # left by statements run outside a cursor
            return state.recorder.begin(
                sql, bindings, frame, state.id, state.database, "apsw", many
            )
        except Exception as error:
            state.recorder.fail(error)
            return detached_record()

    def _qprof_done(self, record: list[Any]) -> None:
        """Fill in the rows changed and take the PROFILE events of the statement."""
        self._qprof_record = None
        record[OPEN] = False
        state = self._qprof
        try:
            if self._qprof_changes is not None:
                try:
                    changed = self.connection.total_changes() - self._qprof_changes
                except apsw.Error:  # closed meanwhile: nothing more is known
                    changed = 0
                record[ROWS_CHANGED] = changed if changed > 0 else 0
            if state.counters:
                # Summed now: the events' dictionaries go at once, not with the batch.
                events = state.events
                record[COUNTERS] = statement_counters(events, record[SHAPE][0])
                events.clear()
        except Exception as error:
            state.recorder.fail(error)
