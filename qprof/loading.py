"""Load: a profile from a trace that already holds its measurements.

``qprof replay --out`` writes every statement with what replay measured under
``measured``; ``profile_trace`` folds such a trace back into a profile without
running anything, and takes the query plans on the database (read-only) for
the same samples replay would. A trace without measurements is replayed.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import apsw

from qprof.errors import DatabaseError, WorkloadError
from qprof.fingerprint import fingerprint_sql
from qprof.plan import explain_plan, is_readonly
from qprof.profile import Measurement, ProfileBuilder, WorkloadProfile
from qprof.readers import ReadProblems, ReadProgress, detect_format
from qprof.readers.qprof_trace import read_records
from qprof.readers.sql_text import reads_only
from qprof.replay import (
    PLAN_LAST_SAMPLE,
    STATEMENT_ERRORS,
    open_readonly,
    replay_workload,
)
from qprof.replica import REPLICA_MODE, REPLICA_NAME, captured_schema, open_replica
from qprof.schema import read_schema
from qprof.trace import is_capture

_COUNTERS = (
    "vm_step",
    "fullscan_step",
    "sort",
    "autoindex",
    "rows_returned",
    "rows_changed",
)


def profile_trace(
    trace: str | Path,
    database: str | Path | None,
    *,
    strict: bool = False,
    progress: ReadProgress | None = None,
    on_measurement: Callable[[Measurement], None] | None = None,
) -> WorkloadProfile:
    """Return the profile of a measured qprof trace, or replay an unmeasured one.

    ``on_measurement`` is called with every statement's measurement, in order
    (the DataFrames of ``qprof.load`` keep them). Raises ``WorkloadError`` for a
    file that is not a qprof trace, and ``DatabaseError`` for a missing or
    non-SQLite database. Without
    ``database``, a captured trace's plans are taken on an empty replica of
    the schema it recorded (``qprof.replica``); a trace without one, or that
    needs replaying, raises ``DatabaseError``.
    """
    path = Path(trace)
    name = detect_format(path)
    if database is None:
        return _profile_on_replica(path, name, strict, progress, on_measurement)
    if name != "qprof" or not _is_measured(path):
        return replay_workload(
            path,
            database,
            format=name,
            strict=strict,
            progress=progress,
            on_measurement=on_measurement,
        )
    problems = ReadProblems(strict=strict)
    profile = WorkloadProfile(
        workload=str(path), database=str(database), format="qprof"
    )
    profile.mode = "trace"
    connection = open_readonly(Path(database))
    try:
        builder = ProfileBuilder(profile)
        seen: dict[str, int] = {}
        readonly: dict[str, bool] = {}
        for statement, record in read_records(path, problems, progress):
            fingerprint = fingerprint_sql(statement.sql)
            count = seen[fingerprint.id] = seen.get(fingerprint.id, 0) + 1
            if fingerprint.id not in readonly:
                readonly[fingerprint.id] = _is_readonly(connection, statement.sql)
            measurement = _measurement(
                statement, fingerprint, record, readonly[fingerprint.id]
            )
            if count & (count - 1) == 0 and count <= PLAN_LAST_SAMPLE:
                try:
                    measurement.plan = explain_plan(
                        connection, statement.sql, statement.params
                    )
                except STATEMENT_ERRORS:
                    pass
            builder.add(measurement)
            if on_measurement is not None:
                on_measurement(measurement)
        builder.finish()
        profile.schema = read_schema(connection, database)
    finally:
        connection.close()
    profile.skipped_lines = problems.count
    profile.skipped = [str(problem) for problem in problems.problems]
    return profile


def _profile_on_replica(
    path: Path,
    name: str,
    strict: bool,
    progress: ReadProgress | None,
    on_measurement: Callable[[Measurement], None] | None,
) -> WorkloadProfile:
    """Profile a captured trace whose database is gone, on an empty replica of its schema."""
    if path.stat().st_size == 0:
        raise WorkloadError(path, 0, "a workload", "an empty file")
    if name == "qprof" and not _has_statements(path):
        if is_capture(path):  # of a run that sent nothing to SQLite: nothing wrong
            empty = WorkloadProfile(
                workload=str(path), database=REPLICA_NAME, format="qprof"
            )
            empty.mode = REPLICA_MODE
            replica = open_replica([])
            try:
                empty.schema = read_schema(replica, REPLICA_NAME)
            finally:
                replica.close()
            empty.schema.path = ""
            return empty
        raise WorkloadError(
            path, 0, "a qprof trace with at least one statement", "none in it"
        )
    if name != "qprof" or not _is_measured(path):
        raise DatabaseError(
            path, "this workload must be replayed: give its database with --db"
        )
    # A capture that created no table (SELECT 1, say) has an empty schema: the
    # replica is then an empty database, which is what the statements saw.
    statements = captured_schema(path)
    if statements is None:
        raise DatabaseError(
            path,
            "this trace holds no schema (replay --out writes none; captures do): "
            "give its database with --db",
        )
    replica = open_replica(statements)
    try:
        with tempfile.TemporaryDirectory(prefix="qprof-replica-") as folder:
            copy = Path(folder) / "replica.db"
            replica.execute("VACUUM INTO ?", (str(copy),))
            profile = profile_trace(
                path,
                copy,
                strict=strict,
                progress=progress,
                on_measurement=on_measurement,
            )
    finally:
        replica.close()
    profile.database = REPLICA_NAME
    profile.mode = REPLICA_MODE
    if profile.schema is not None:
        profile.schema.path = ""
    return profile


def _measurement(
    statement, fingerprint, record: dict[str, Any], readonly: bool
) -> Measurement:  # type: ignore[no-untyped-def]
    measured = record.get("measured")
    if not isinstance(measured, dict):
        measured = {}
    values = {key: _int(measured.get(key)) for key in _COUNTERS}
    error = measured.get("error")
    measurement = Measurement(
        statement,
        fingerprint,
        _int(measured.get("elapsed_ns")),
        readonly=readonly,
        error=str(error) if error else None,
    )
    for key, value in values.items():
        setattr(measurement, key, value)
    return measurement


def _has_statements(path: Path) -> bool:
    problems = ReadProblems()
    return any(True for _ in itertools.islice(read_records(path, problems), 1))


def _is_measured(path: Path) -> bool:
    problems = ReadProblems()
    for _statement, record in itertools.islice(read_records(path, problems), 5):
        return isinstance(record.get("measured"), dict)
    if problems.count:
        raise WorkloadError(
            path, 0, "a qprof trace with at least one statement", "none"
        )
    return False


def _is_readonly(connection: apsw.Connection, sql: str) -> bool:
    try:
        return is_readonly(connection, sql)
    except STATEMENT_ERRORS:
        # It does not prepare here (a CREATE of a table the replica has, a table it
        # lacks): judge by its words, as SQLite would have.
        return reads_only(sql)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
