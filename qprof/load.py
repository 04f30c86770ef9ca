"""Load: a profile from a trace that already holds its measurements.

``qprof replay --out`` writes every statement with what replay measured under
``measured``; ``profile_trace`` folds such a trace back into a profile without
running anything, and takes the query plans on the database (read-only) for
the same samples replay would. A trace without measurements is replayed.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import apsw

from qprof.errors import WorkloadError
from qprof.fingerprint import fingerprint_sql
from qprof.plan import explain_plan, is_readonly
from qprof.profile import Measurement, ProfileBuilder, WorkloadProfile
from qprof.readers import ReadProblems, ReadProgress, detect_format
from qprof.readers.qprof_trace import read_records
from qprof.replay import (
    PLAN_LAST_SAMPLE,
    STATEMENT_ERRORS,
    open_readonly,
    replay_workload,
)
from qprof.schema import read_schema

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
    database: str | Path,
    *,
    strict: bool = False,
    progress: ReadProgress | None = None,
) -> WorkloadProfile:
    """Return the profile of a measured qprof trace, or replay an unmeasured one.

    Raises ``WorkloadError`` for a file that is not a qprof trace, and
    ``DatabaseError`` for a missing or non-SQLite database.
    """
    path = Path(trace)
    name = detect_format(path)
    if name != "qprof" or not _is_measured(path):
        return replay_workload(
            path, database, format=name, strict=strict, progress=progress
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
        builder.finish()
        profile.schema = read_schema(connection, database)
    finally:
        connection.close()
    profile.skipped_lines = problems.count
    profile.skipped = [str(problem) for problem in problems.problems]
    return profile


def _measurement(
    statement, fingerprint, record: dict[str, Any], readonly: bool
) -> Measurement:  # type: ignore[no-untyped-def]
    measured = record.get("measured") or {}
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
        return True


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
