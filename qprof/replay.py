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
import statistics
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
from qprof.schema import read_schema
from qprof.tempdirs import make_folder, remove_folder, signals_held
from qprof.trace import Statement

log = logging.getLogger(__name__)
perf_counter_ns = time.perf_counter_ns

# Plans are taken at a fingerprint's 1st, 2nd, 4th, ... 128th statement: a
# spread of real values (STAT4 can pick another plan for another value) at a
# cost that does not grow with the log.
PLAN_LAST_SAMPLE = 128
STATEMENT_CACHE_SIZE = 1024
PROGRESS_STEPS = 200_000
"""VM steps between chances for a signal to interrupt a long statement."""
# What running one statement can raise, besides SQLite's own errors: apsw's
# binding checks (a missing named parameter, an integer out of range, a NUL).
STATEMENT_ERRORS = (
    apsw.Error,
    ValueError,
    TypeError,
    KeyError,
    OverflowError,
    IndexError,
)


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
    builder.finish()
    profile.schema = read_schema(replayer.connection)


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
        self._connection.set_progress_handler(_let_signals_in, PROGRESS_STEPS)
        self._shapes: dict[str, _Shape] = {}
        self._unprepared: dict[str, _Shape] = {}
        self._settings: list[Statement] = []

    def measure(self, statement: Statement) -> Measurement:
        """Run ``statement`` and return what it cost; a failure is recorded, not raised."""
        fingerprint = fingerprint_sql(statement.sql)
        shape = self._shapes.get(fingerprint.id)
        if shape is None:
            shape = self._new_shape(fingerprint.id, fingerprint.text, statement.sql)
        shape.seen += 1
        seen = shape.seen
        readonly = shape.readonly
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
        except STATEMENT_ERRORS as failure:
            error = _describe(failure)
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
        if error is None:
            if shape.repeatable and self.repeat > 1:
                measurement.elapsed_ns = self._median_time(statement, elapsed)
            elif shape.setting and self.mode == "read-only":
                self._settings.append(statement)
        return measurement

    @property
    def connection(self) -> apsw.Connection:
        """Return the connection statements run on (the original or the snapshot)."""
        return self._connection

    def close(self) -> None:
        """Close the connection and delete the snapshot, if one was made."""
        with signals_held():
            try:
                self._connection.close()
            finally:
                remove_folder(self.snapshot_dir)
                self.snapshot_dir = None

    def __enter__(self) -> Replayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _median_time(self, statement: Statement, first_ns: int) -> int:
        """Run a read statement ``repeat - 1`` more times; return the median time."""
        times = [first_ns]
        for _ in range(self.repeat - 1):
            started = perf_counter_ns()
            try:
                for _ in self._cursor.execute(statement.sql, statement.params):
                    pass
            except STATEMENT_ERRORS:
                break
            times.append(perf_counter_ns() - started)
        return int(statistics.median(times))

    def _new_shape(self, key: str, text: str, sql: str) -> _Shape:
        """Classify a new fingerprint; remembered once its statement prepares."""
        repeatable = text.startswith(("SELECT", "WITH", "VALUES"))
        setting = text.startswith("PRAGMA")
        try:
            readonly = is_readonly(self._connection, sql)
        except STATEMENT_ERRORS:
            # It does not prepare here, so it fails the same way on a snapshot
            # (the state is the same): no reason to copy. Ask again next time.
            shape = self._unprepared.setdefault(
                key, _Shape(True, 0, repeatable, setting)
            )
            return shape
        shape = self._unprepared.pop(key, None) or _Shape(  # type: ignore[arg-type]
            readonly, 0, repeatable, setting
        )
        shape.readonly = readonly
        shape.repeatable = repeatable and readonly
        self._shapes[key] = shape
        return shape

    def _plan(self, statement: Statement) -> tuple | None:
        try:
            return explain_plan(self._connection, statement.sql, statement.params)
        except STATEMENT_ERRORS:
            return None

    def _switch_to_snapshot(self) -> None:
        """Copy the database to a temporary snapshot and go on replaying there."""
        self.snapshot_dir = make_folder("qprof-snapshot-")
        path = self.snapshot_dir / self.database.name
        log.info("the workload writes: replaying on a snapshot copy %s", path)
        source = self._connection
        try:
            copy = apsw.Connection(str(path), statementcachesize=STATEMENT_CACHE_SIZE)
            with copy.backup("main", source, "main") as backup:
                while not backup.done:
                    backup.step(4096)
        except apsw.Error as error:
            raise DatabaseError(
                self.database,
                f"cannot be copied to a snapshot in {self.snapshot_dir.parent} "
                f"({_describe(error)}); set TMPDIR to a folder with room for a copy",
            ) from None
        in_transaction = source.in_transaction
        source.close()
        self._connection = copy
        self._cursor = copy.cursor()
        copy.trace_v2(apsw.SQLITE_TRACE_PROFILE, self._profile_events.append)
        copy.set_progress_handler(_let_signals_in, PROGRESS_STEPS)
        # No file but the snapshot may be written: ATTACH (and VACUUM INTO, which
        # attaches its target) could reach the user's database or any other.
        copy.limit(apsw.SQLITE_LIMIT_ATTACHED, 0)
        # Settings made on the read-only connection (PRAGMA foreign_keys = ON,
        # say) belong to the connection: make them again on the copy.
        for setting in self._settings:
            try:
                copy.execute(setting.sql, setting.params).fetchall()
            except STATEMENT_ERRORS:
                pass
        if in_transaction:
            # A BEGIN replayed before the first write opened a transaction on
            # the read-only connection; the workload's COMMIT expects it here.
            copy.execute("BEGIN")
        self.mode = "snapshot"


class _Shape:
    """What replay knows of one fingerprint."""

    __slots__ = ("readonly", "seen", "repeatable", "setting")

    def __init__(
        self, readonly: bool, seen: int, repeatable: bool, setting: bool
    ) -> None:
        self.readonly = readonly
        self.seen = seen
        self.repeatable = repeatable
        self.setting = setting


def _let_signals_in() -> bool:
    """Progress handler: running Python here lets Ctrl-C and SIGTERM stop a long statement.

    Python runs signal handlers only between bytecodes; without this call a
    statement that steps for a minute would hold a Ctrl-C for that minute.
    Returning False lets the statement go on.
    """
    return False


def _is_wal(path: Path) -> bool:
    """Return True when the database header says WAL (file format bytes 18-19 are 2)."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(20)
    except OSError:
        return False
    return len(header) == 20 and header[18] == 2


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def check_inputs(workload: str | Path, database: str | Path) -> str:
    """Check that the workload can be read and the database opened; return the format.

    Raises ``WorkloadError`` or ``DatabaseError`` as ``replay_workload`` would,
    before anything is written (an ``--out`` file, say).
    """
    name = detect_format(Path(workload))
    open_readonly(Path(database)).close()
    return name


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
        reason = f"cannot be opened read-only: {error}"
        if "readonly" in str(error) and _is_wal(path):
            reason = (
                "is in WAL mode and SQLite cannot create its -shm file beside it to read it "
                "(the folder is not writable); copy the database to a writable folder"
            )
        raise DatabaseError(path, reason) from None
    return connection
