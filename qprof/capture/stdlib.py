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
_getframe = sys._getframe
_new_cursor = sqlite3.Connection.cursor
_cursor_execute = sqlite3.Cursor.execute
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

    _qprof: ConnectionState | None = None
    """The tracer's state of the connection (set when it is opened or attached)."""

    def cursor(self, factory: Any = None) -> Any:  # type: ignore[override]
        """Return a traced cursor of class ``factory`` (``sqlite3.Cursor`` by default)."""
        return _new_cursor(
            self, TracingCursor if factory is None else cursor_class(factory)
        )

    def execute(self, sql: str, parameters: Any = (), /) -> Any:  # type: ignore[override]
        """Run ``sql`` on a new traced cursor, as ``sqlite3.Connection.execute``."""
        return _execute(_new_cursor(self, TracingCursor), sql, parameters, _getframe(1))

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

    _qprof_record: list[Any] | None = None
    """The record of the statement whose rows are being fetched, if any."""

    @property
    def _qprof(self) -> ConnectionState | None:
        """The tracer's state of the cursor's connection (None: not traced)."""
        return getattr(self.connection, "_qprof", None)

    def execute(self, sql: str, parameters: Any = (), /) -> Any:  # type: ignore[override]
        """Run ``sql`` as ``sqlite3.Cursor.execute`` does, and record it."""
        return _execute(self, sql, parameters, _getframe(1))

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
        record = _begin(state, self, sql, first, _getframe(1), many)
        before = _total_changes(self.connection)
        start = perf_counter_ns()
        try:
            super().executemany(sql, parameters)
        except BaseException as error:
            _failed(self, record, start, before, error)
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
        record = _begin(state, self, script, (), _getframe(1))
        state.dirty = True
        before = _total_changes(self.connection)
        start = perf_counter_ns()
        try:
            super().executescript(script)
        except BaseException as error:
            _failed(self, record, start, before, error)
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


def _execute(cursor: TracingCursor, sql: Any, parameters: Any, frame: Any) -> Any:
    """Run one statement on ``cursor`` and record it (the hot path, kept short)."""
    connection = cursor.connection
    state = connection._qprof  # type: ignore[attr-defined]
    if state is None or state.recorder.closed and not _rejoin(state):
        return _cursor_execute(cursor, sql, parameters)
    record = _begin(state, cursor, sql, parameters, frame)
    try:
        before: int | None = connection.total_changes
    except sqlite3.Error:  # _total_changes, inlined on the hot path
        before = None
    start = perf_counter_ns()
    try:
        _cursor_execute(cursor, sql, parameters)
    except BaseException as error:
        _failed(cursor, record, start, before, error)
        raise
    return _executed(cursor, record, start, before)


def _begin(
    state: ConnectionState,
    cursor: TracingCursor,
    sql: Any,
    params: Any,
    frame: Any,
    many: int | None = None,
) -> list[Any]:
    """Buffer the statement's record and return it, to fill in.

    A record is buffered before the statement runs and filled in as rows are
    fetched, so a cursor left half-read (a ``fetchone()`` of a longer result)
    needs no finalizer: it is written with whatever was counted by then.
    """
    try:
        previous = cursor._qprof_record
        if previous is not None:
            previous[OPEN] = cursor._qprof_record = None
        if state.dirty:
            snapshot_schema(cursor.connection, state)
        if type(sql) is not str:
            sql = str(sql)
        if changes_schema[sql]:
            state.dirty = True
        return state.recorder.begin(
            sql, params, frame, state.id, state.database, "sqlite3", many
        )
    except Exception as error:
        state.recorder.fail(error)
        return detached_record()


def _total_changes(connection: sqlite3.Connection) -> int | None:
    """Return the connection's ``total_changes``; None where the driver refuses (a
    closed connection, another thread's), which its execute then says itself."""
    try:
        return connection.total_changes
    except sqlite3.Error:
        return None


def _executed(
    cursor: TracingCursor, record: list[Any], start: int, before: int | None
) -> Any:
    """Fill in what ``execute`` measured; leave the record open while rows remain."""
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
        state = cursor._qprof
        if state is not None:
            state.recorder.fail(error)
    return cursor


def _failed(
    cursor: TracingCursor,
    record: list[Any],
    start: int,
    before: int | None,
    error: BaseException,
) -> None:
    """Fill in a statement that raised: its time, error, and the rows it changed
    before it did (an executemany's earlier sets)."""
    record[ELAPSED_NS] = perf_counter_ns() - start
    record[ERROR] = f"{type(error).__name__}: {error}"
    record[OPEN] = False
    if before is not None:
        try:
            record[ROWS_CHANGED] = cursor.connection.total_changes - before
        except sqlite3.Error:
            pass


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
