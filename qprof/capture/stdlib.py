"""Capture for Python's ``sqlite3``: ``sqlite3.connect`` wrapped, every argument kept.

A connection opened while a tracer is active is made from a subclass of the
factory asked for (``sqlite3.Connection`` or the caller's ``factory=``) whose
cursors are a subclass of the cursor class asked for, with qprof's class
*below* the caller's in the MRO: a wrapper such as Django's
``SQLiteCursorWrapper`` turns its ``%s`` into ``?`` first and qprof records the
SQL that reaches SQLite. All the work happens around ``execute`` and the fetch
calls: no SQLite callback is registered, because Python running inside
``sqlite3_step`` can trigger a garbage collection that closes another
connection to a shared-cache database and deadlocks on the mutex the stepping
statement holds.
"""

from __future__ import annotations

import os
import sqlite3
import sqlite3.dbapi2
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any

from qprof.capture.recorder import (
    ELAPSED_NS,
    ERROR,
    MANY,
    OPEN,
    PARAMS,
    ROWS_CHANGED,
    ROWS_RETURNED,
    CountedSets,
    Recorder,
    changes_schema,
    detached_record,
)

perf_counter_ns = time.perf_counter_ns
_real_connect: Callable[..., sqlite3.Connection] = sqlite3.connect
_FACTORY_POSITION = 4
"""``factory`` is the 6th parameter of ``sqlite3.connect``, the 5th after ``database``."""
_SCHEMA_SQL = "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"

active: Recorder | None = None
_connections: weakref.WeakSet[sqlite3.Connection] = weakref.WeakSet()
_ids = iter(range(1, sys.maxsize))
_classes: dict[tuple[type, type], type] = {}


class ConnectionState:
    """What the tracer keeps about one traced connection."""

    __slots__ = ("recorder", "id", "database", "dirty")

    def __init__(self, recorder: Recorder, database: str) -> None:
        self.recorder = recorder
        """Where its statements go."""
        self.id = next(_ids)
        """A number unique in this process (records say ``connection``)."""
        self.database = database
        """The database it opened (a path, ``:memory:`` or a URI)."""
        self.dirty = True
        """The schema may have changed since the last snapshot."""


def install(recorder: Recorder) -> None:
    """Trace every ``sqlite3`` connection opened from now on into ``recorder``."""
    global active
    active = recorder
    sqlite3.connect = sqlite3.dbapi2.connect = traced_connect  # type: ignore[assignment]


def uninstall() -> None:
    """Stop tracing new connections; snapshot the schemas of those still open."""
    global active
    sqlite3.connect = sqlite3.dbapi2.connect = _real_connect  # type: ignore[assignment]
    for connection in list(_connections):
        state = getattr(connection, "_qprof", None)
        if state is not None and state.recorder is active:
            snapshot_schema(connection, state)
    active = None


def traced_connect(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
    """Open a connection as ``sqlite3.connect`` does, traced while a tracer is active."""
    recorder = active
    if recorder is None or recorder.paused:
        return _real_connect(database, *args, **kwargs)
    if len(args) > _FACTORY_POSITION:
        args = list(args)  # type: ignore[assignment]
        base = args[_FACTORY_POSITION] or sqlite3.Connection  # type: ignore[index]
        args[_FACTORY_POSITION] = connection_class(base)  # type: ignore[index]
        args = tuple(args)
    else:
        kwargs["factory"] = connection_class(
            kwargs.get("factory") or sqlite3.Connection
        )
    connection = _real_connect(database, *args, **kwargs)
    try:
        connection._qprof = ConnectionState(recorder, _name(database))  # type: ignore[attr-defined]
        _connections.add(connection)
    except Exception as error:  # the tracer never breaks the application
        recorder.fail(error)
    return connection


def attach_connection(connection: sqlite3.Connection, recorder: Recorder) -> None:
    """Trace an existing connection by switching its class to a traced subclass.

    Raises ``TypeError`` when Python refuses the switch (a class with a
    different layout).
    """
    connection.__class__ = connection_class(type(connection))
    name = ""
    try:
        rows = sqlite3.Cursor(connection).execute("PRAGMA database_list").fetchall()
        name = next((str(row[2]) for row in rows if row[1] == "main"), "") or ":memory:"
    except sqlite3.Error:
        pass
    connection._qprof = ConnectionState(recorder, name)  # type: ignore[attr-defined]
    _connections.add(connection)


def connection_class(base: type) -> type:
    """Return the traced subclass of connection class ``base`` (cached)."""
    if issubclass(base, TracingConnection):
        return base
    key = (base, sqlite3.Connection)
    cls = _classes.get(key)
    if cls is None:
        if base is sqlite3.Connection:
            cls = TracingConnection
        else:
            cls = type(f"Traced{base.__name__}", (base, TracingConnection), {})
        _classes[key] = cls
    return cls


def cursor_class(base: type) -> type:
    """Return the traced subclass of cursor class ``base`` (cached)."""
    if issubclass(base, TracingCursor):
        return base
    key = (base, sqlite3.Cursor)
    cls = _classes.get(key)
    if cls is None:
        if base is sqlite3.Cursor:
            cls = TracingCursor
        else:
            cls = type(f"Traced{base.__name__}", (base, TracingCursor), {})
        _classes[key] = cls
    return cls


def snapshot_schema(connection: sqlite3.Connection, state: ConnectionState) -> None:
    """Record the CREATE statements of the connection's main database."""
    state.dirty = False
    try:
        cursor = sqlite3.Cursor(connection)
        sql = [str(row[0]) for row in cursor.execute(_SCHEMA_SQL).fetchall()]
        cursor.close()
    except sqlite3.ProgrammingError:
        return  # closed, or used from another thread: the last snapshot stands
    except Exception as error:
        state.recorder.fail(error)
        return
    state.recorder.add_schema(state.database, state.id, sql)


class TracingConnection(sqlite3.Connection):
    """A ``sqlite3.Connection`` whose statements go through traced cursors."""

    def cursor(self, factory: Any = None) -> Any:  # type: ignore[override]
        """Return a traced cursor of class ``factory`` (``sqlite3.Cursor`` by default)."""
        cls = TracingCursor if factory is None else cursor_class(factory)
        cursor = super().cursor(cls)
        cursor._qprof = getattr(self, "_qprof", None)
        return cursor

    def execute(self, sql: str, parameters: Any = (), /) -> Any:  # type: ignore[override]
        """Run ``sql`` on a new traced cursor, as ``sqlite3.Connection.execute``."""
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> Any:  # type: ignore[override]
        """Run ``sql`` for each set of parameters on a new traced cursor."""
        return self.cursor().executemany(sql, parameters)

    def executescript(self, script: str, /) -> Any:  # type: ignore[override]
        """Run a script of statements on a new traced cursor."""
        return self.cursor().executescript(script)

    def close(self) -> None:
        """Snapshot a schema changed since the last snapshot, then close."""
        state = getattr(self, "_qprof", None)
        if state is not None and state.dirty and not state.recorder.closed:
            snapshot_schema(self, state)
        super().close()


class TracingCursor(sqlite3.Cursor):
    """A ``sqlite3.Cursor`` that records each statement and counts rows as fetched."""

    _qprof: ConnectionState | None = None
    _qprof_record: list[Any] | None = None
    """The record of the statement whose rows are being fetched, if any."""

    def execute(self, sql: str, parameters: Any = (), /) -> Any:  # type: ignore[override]
        """Run ``sql`` as ``sqlite3.Cursor.execute`` does, and record it."""
        state = self._qprof
        if state is None or state.recorder.closed and not _rejoin(state):
            return super().execute(sql, parameters)
        record, before = _begin(state, self, sql, parameters, sys._getframe(1))
        start = perf_counter_ns()
        try:
            super().execute(sql, parameters)
        except BaseException as error:
            _failed(record, start, error)
            raise
        return _executed(self, record, start, before)

    def executemany(self, sql: str, parameters: Any, /) -> Any:  # type: ignore[override]
        """Run ``sql`` for each set of parameters, recorded as one statement."""
        state = self._qprof
        if state is None or state.recorder.closed and not _rejoin(state):
            return super().executemany(sql, parameters)
        counted = None
        if isinstance(parameters, (list, tuple)):
            first, many = (parameters[0] if parameters else ()), len(parameters)
        else:  # a generator: counted as the driver takes its sets
            counted = CountedSets(parameters)
            parameters, first, many = counted, (), None
        record, before = _begin(state, self, sql, first, sys._getframe(1), many)
        start = perf_counter_ns()
        try:
            super().executemany(sql, parameters)
        except BaseException as error:
            _failed(record, start, error)
            raise
        finally:
            if counted is not None:
                record[PARAMS], record[MANY] = counted.first, counted.count
        return _executed(self, record, start, before)

    def executescript(self, script: str, /) -> Any:  # type: ignore[override]
        """Run a script, recorded as one statement (its schema snapshot follows)."""
        state = self._qprof
        if state is None or state.recorder.closed and not _rejoin(state):
            return super().executescript(script)
        record, before = _begin(state, self, script, (), sys._getframe(1))
        state.dirty = True
        start = perf_counter_ns()
        try:
            super().executescript(script)
        except BaseException as error:
            _failed(record, start, error)
            raise
        return _executed(self, record, start, before)

    def __next__(self) -> Any:
        record = self._qprof_record
        if record is None:
            return super().__next__()
        start = perf_counter_ns()
        try:
            row = super().__next__()
        except BaseException:
            record[ELAPSED_NS] += perf_counter_ns() - start
            record[OPEN] = self._qprof_record = None
            raise
        record[ELAPSED_NS] += perf_counter_ns() - start
        record[ROWS_RETURNED] += 1
        return row

    def fetchone(self) -> Any:
        """Return the next row (``None`` at the end), counting it."""
        record = self._qprof_record
        if record is None:
            return super().fetchone()
        start = perf_counter_ns()
        row = super().fetchone()
        record[ELAPSED_NS] += perf_counter_ns() - start
        if row is None:
            record[OPEN] = self._qprof_record = None
        else:
            record[ROWS_RETURNED] += 1
        return row

    def fetchmany(self, size: int | None = None) -> list[Any]:
        """Return up to ``size`` rows, counting them."""
        record = self._qprof_record
        if record is None:
            return super().fetchmany(self.arraysize if size is None else size)
        start = perf_counter_ns()
        rows = super().fetchmany(self.arraysize if size is None else size)
        record[ELAPSED_NS] += perf_counter_ns() - start
        record[ROWS_RETURNED] += len(rows)
        if not rows:
            record[OPEN] = self._qprof_record = None
        return rows

    def fetchall(self) -> list[Any]:
        """Return the remaining rows, counting them."""
        record = self._qprof_record
        if record is None:
            return super().fetchall()
        start = perf_counter_ns()
        rows = super().fetchall()
        record[ELAPSED_NS] += perf_counter_ns() - start
        record[ROWS_RETURNED] += len(rows)
        record[OPEN] = self._qprof_record = None
        return rows


def _rejoin(state: ConnectionState) -> bool:
    """Move a connection an ended trace traced into the running one, if any."""
    recorder = active
    if recorder is None or recorder.closed:
        return False
    state.recorder = recorder
    state.dirty = True  # its schema is not in the new trace yet
    return True


def _begin(
    state: ConnectionState,
    cursor: TracingCursor,
    sql: Any,
    params: Any,
    frame: Any,
    many: int | None = None,
) -> tuple[list[Any], int | None]:
    """Buffer the statement's record and return it (filled in later) and total_changes.

    A record is buffered before the statement runs and filled in as rows are
    fetched, so a cursor left half-read (a ``fetchone()`` of a longer result)
    needs no finalizer: it is written with whatever was counted by then.
    """
    recorder = state.recorder
    try:
        previous = cursor._qprof_record
        if previous is not None:
            previous[OPEN] = cursor._qprof_record = None
        connection = cursor.connection
        if state.dirty:
            snapshot_schema(connection, state)
        text = sql if type(sql) is str else str(sql)
        if changes_schema(text):
            state.dirty = True
        record = recorder.begin(
            text, params, frame, state.id, state.database, "sqlite3", many
        )
        return record, connection.total_changes
    except Exception as error:
        recorder.fail(error)
        return detached_record(), None


def _executed(
    cursor: TracingCursor, record: list[Any], start: int, before: int | None
) -> Any:
    record[ELAPSED_NS] = perf_counter_ns() - start
    try:
        if before is not None:
            record[ROWS_CHANGED] = cursor.connection.total_changes - before
        if cursor.description is not None:
            cursor._qprof_record = record
        else:
            record[OPEN] = False
    except Exception as error:
        record[OPEN] = False
        if cursor._qprof is not None:
            cursor._qprof.recorder.fail(error)
    return cursor


def _failed(record: list[Any], start: int, error: BaseException) -> None:
    record[ELAPSED_NS] = perf_counter_ns() - start
    record[ERROR] = f"{type(error).__name__}: {error}"
    record[OPEN] = False


def _name(database: Any) -> str:
    """Return the database as the trace names it: a path made absolute (the
    program may change directory), ``:memory:`` or a URI as given."""
    try:
        name = os.fsdecode(database) if not isinstance(database, str) else database
    except TypeError:
        return str(database)
    if name in ("", ":memory:") or name.startswith("file:"):
        return name
    try:
        return os.path.abspath(name)
    except OSError:  # the working directory is gone
        return name
