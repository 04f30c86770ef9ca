"""Replay: run a workload's statements against a database and measure each one.

The user's database is never written. Replay opens it read-only and stays so
while the workload only reads. At the first statement that writes, it copies
the database with SQLite's backup API (https://sqlite.org/backup.html) to a
temporary snapshot and goes on there; reads before that point changed nothing,
so the snapshot starts from exactly the state the workload saw. The snapshot is
deleted when replay ends, also on Ctrl-C.

Time is ``perf_counter_ns`` around the execution and the fetch of every row:
SQLite's own profile time is millisecond-grained here. The counters come from
the ``SQLITE_TRACE_PROFILE`` event, which carries ``sqlite3_stmt_status`` for
the statement that just finished.
"""

from __future__ import annotations

import logging
import shutil
import statistics
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import apsw

from qprof.errors import DatabaseError
from qprof.fingerprint import fingerprint_sql
from qprof.plan import explain_plan, is_readonly
from qprof.profile import Measurement, ProfileBuilder, WorkloadProfile
from qprof.readers import ReadProblems, ReadProgress, detect_format, read_workload
from qprof.trace import Statement

log = logging.getLogger(__name__)
perf_counter_ns = time.perf_counter_ns

# Plans are taken at a fingerprint's 1st, 2nd, 4th, ... 128th statement: a
# spread of real values (STAT4 can pick another plan for another value) at a
# cost that does not grow with the log.
PLAN_LAST_SAMPLE = 128
STATEMENT_CACHE_SIZE = 1024


def replay_workload(
    workload: str | Path,
    database: str | Path,
    *,
    format: str | None = None,
    repeat: int = 1,
    strict: bool = False,
    progress: ReadProgress | None = None,
    on_measurement: Callable[[Measurement], None] | None = None,
) -> WorkloadProfile:
    """Replay the workload file against ``database`` and return its profile.

    ``format`` names a reader (None: detect it). Read statements run ``repeat``
    times and keep the median time. ``on_measurement`` is called with every
    measured statement, in order (``--out`` writes them). Raises
    ``WorkloadError`` for an unreadable workload (or, with ``strict``, its first
    bad line) and ``DatabaseError`` for a missing or non-SQLite database.
    """
    workload = Path(workload)
    name = format or detect_format(workload)
    problems = ReadProblems(strict=strict)
    statements = read_workload(workload, name, problems, progress)
    profile = WorkloadProfile(
        workload=str(workload), database=str(database), format=name, repeat=repeat
    )
    started = time.perf_counter()
    with Replayer(database, repeat=repeat) as replayer:
        replay_statements(replayer, statements, profile, on_measurement)
        profile.mode = replayer.mode
    profile.elapsed_s = time.perf_counter() - started
    profile.skipped_lines = problems.count
    profile.skipped = [str(problem) for problem in problems.problems]
    log.info(
        "replayed %d statements, %d fingerprints",
        profile.statements,
        len(profile.fingerprints),
    )
    return profile


def replay_statements(
    replayer: Replayer,
    statements: Iterable[Statement],
    profile: WorkloadProfile,
    on_measurement: Callable[[Measurement], None] | None = None,
) -> None:
    """Measure each statement with ``replayer`` and fold it into ``profile``."""
    builder = ProfileBuilder(profile)
    for statement in statements:
        measurement = replayer.measure(statement)
        builder.add(measurement)
        if on_measurement is not None:
            on_measurement(measurement)


class Replayer:
    """Run statements one by one against a database, measuring each.

    Use as a context manager: on exit the connection is closed and any
    snapshot copy deleted.
    """

    def __init__(self, database: str | Path, repeat: int = 1) -> None:
        self.database = Path(database)
        self.repeat = max(1, repeat)
        self.mode = "read-only"
        self.snapshot_dir: Path | None = None
        self._connection = open_readonly(self.database)
        self._cursor = self._connection.cursor()
        # The profile event is kept by a C-level append: no Python frame runs
        # inside sqlite3_step, and the last event is the statement's own.
        self._profile_events: deque[dict[str, Any]] = deque(maxlen=1)
        self._connection.trace_v2(
            apsw.SQLITE_TRACE_PROFILE, self._profile_events.append
        )
        self._shapes: dict[str, list[int]] = {}
        self._unprepared: dict[str, list[int]] = {}

    def measure(self, statement: Statement) -> Measurement:
        """Run ``statement`` and return what it cost; a failure is recorded, not raised."""
        fingerprint = fingerprint_sql(statement.sql)
        shape = self._shapes.get(fingerprint.id)
        if shape is None:
            shape = self._new_shape(fingerprint.id, statement.sql)
        shape[1] += 1
        seen = shape[1]
        readonly = shape[0] == 1
        if not readonly and self.mode == "read-only":
            self._switch_to_snapshot()
        plan = None
        if seen & (seen - 1) == 0 and seen <= PLAN_LAST_SAMPLE:
            plan = self._plan(statement)

        # Measure: the clock runs around the execution and the fetch of every row.
        connection = self._connection
        events = self._profile_events
        events.clear()
        error = None
        rows = 0
        changes_before = connection.total_changes()
        started = perf_counter_ns()
        try:
            for _ in self._cursor.execute(statement.sql, statement.params):
                rows += 1
        except apsw.Error as failure:
            error = f"{type(failure).__name__}: {failure}"
        elapsed = perf_counter_ns() - started

        measurement = Measurement(
            statement,
            fingerprint,
            elapsed,
            rows_returned=rows,
            rows_changed=connection.total_changes() - changes_before,
            readonly=readonly,
            error=error,
            plan=plan,
        )
        if events:
            status = events[0]["stmt_status"]
            measurement.vm_step = status["SQLITE_STMTSTATUS_VM_STEP"]
            measurement.fullscan_step = status["SQLITE_STMTSTATUS_FULLSCAN_STEP"]
            measurement.sort = status["SQLITE_STMTSTATUS_SORT"]
            measurement.autoindex = status["SQLITE_STMTSTATUS_AUTOINDEX"]
        if readonly and self.repeat > 1 and error is None:
            times = [elapsed] + [
                self._time_again(statement) for _ in range(self.repeat - 1)
            ]
            measurement.elapsed_ns = int(statistics.median(times))
        return measurement

    def close(self) -> None:
        """Close the connection and delete the snapshot, if one was made."""
        try:
            self._connection.close()
        finally:
            if self.snapshot_dir is not None:
                shutil.rmtree(self.snapshot_dir, ignore_errors=True)
                self.snapshot_dir = None

    def __enter__(self) -> Replayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _time_again(self, statement: Statement) -> int:
        started = perf_counter_ns()
        for _ in self._cursor.execute(statement.sql, statement.params):
            pass
        return perf_counter_ns() - started

    def _new_shape(self, key: str, sql: str) -> list[int]:
        """Return ``[readonly, seen]`` for a new fingerprint, remembered when known."""
        try:
            readonly = is_readonly(self._connection, sql)
        except apsw.Error:
            # It does not prepare (yet): judge by its first word, ask again next
            # time, and let the execution record the error.
            readonly = (
                sql.lstrip()[:7].upper().startswith(("SELECT", "VALUES", "EXPLAIN"))
            )
            shape = self._unprepared.setdefault(key, [0, 0])
            shape[0] = int(readonly)
            return shape
        shape = self._unprepared.pop(key, [0, 0])
        shape[0] = int(readonly)
        self._shapes[key] = shape
        return shape

    def _plan(self, statement: Statement) -> tuple | None:
        try:
            return explain_plan(self._connection, statement.sql, statement.params)
        except apsw.Error:
            return None

    def _switch_to_snapshot(self) -> None:
        """Copy the database to a temporary snapshot and go on replaying there."""
        self.snapshot_dir = Path(tempfile.mkdtemp(prefix="qprof-snapshot-"))
        path = self.snapshot_dir / self.database.name
        log.info("the workload writes: replaying on a snapshot copy %s", path)
        source = self._connection
        copy = apsw.Connection(str(path), statementcachesize=STATEMENT_CACHE_SIZE)
        with copy.backup("main", source, "main") as backup:
            while not backup.done:
                backup.step(4096)
        in_transaction = source.in_transaction
        source.close()
        self._connection = copy
        self._cursor = copy.cursor()
        copy.trace_v2(apsw.SQLITE_TRACE_PROFILE, self._profile_events.append)
        if in_transaction:
            # A BEGIN replayed before the first write opened a transaction on
            # the read-only connection; the workload's COMMIT expects it here.
            copy.execute("BEGIN")
        self.mode = "snapshot"


def open_readonly(path: Path) -> apsw.Connection:
    """Open the SQLite database at ``path`` read-only, checking it is one.

    Raises ``DatabaseError`` when the file is missing, unreadable or not SQLite.
    """
    if not path.exists():
        raise DatabaseError(path, "no such database file")
    if path.is_dir():
        raise DatabaseError(path, "is a directory, not a database file")
    try:
        connection = apsw.Connection(
            str(path),
            flags=apsw.SQLITE_OPEN_READONLY,
            statementcachesize=STATEMENT_CACHE_SIZE,
        )
        connection.execute("SELECT count(*) FROM sqlite_schema").fetchall()
    except apsw.NotADBError:
        raise DatabaseError(
            path, "not a SQLite database (is it encrypted, or another file?)"
        ) from None
    except apsw.Error as error:
        raise DatabaseError(path, f"cannot be opened read-only: {error}") from None
    return connection
