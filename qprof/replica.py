"""An empty replica of the schema a capture recorded, for plans after the database is gone.

Capture writes ``{"qprof_schema": {"database": ..., "sql": [...]}}`` records
(the CREATE statements of ``sqlite_schema``) when it first sees a connection,
after its schema changes, and at the end. ``captured_schema`` merges them (the
last definition of each object wins) and ``open_replica`` builds an in-memory
database from them: no rows, so plans are those of an empty database without
statistics.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import apsw

from qprof.capture.recorder import SCHEMA_KEY

REPLICA_MODE = "trace (empty replica of the captured schema)"
REPLICA_NAME = "an empty replica of the captured schema"

_OBJECT = re.compile(
    r"^\s*CREATE\s+(?:UNIQUE\s+|VIRTUAL\s+|TEMP\s+|TEMPORARY\s+)*"
    r"(TABLE|INDEX|VIEW|TRIGGER)\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"((?:\"[^\"]+\"|`[^`]+`|\[[^\]]+\]|[\w$]+)(?:\s*\.\s*(?:\"[^\"]+\"|[\w$]+))?)",
    re.IGNORECASE,
)
_ORDER = {"TABLE": 0, "INDEX": 1, "VIEW": 2, "TRIGGER": 3}


def captured_schema(path: str | Path) -> list[str] | None:
    """Return the CREATE statements recorded in the trace at ``path``, tables first.

    Several databases (one per test, say) are merged: the last definition of
    each name wins. Returns None when the trace has no schema record (it was not
    captured), an empty list when the databases it saw had no tables.
    """
    objects: dict[tuple[str, str], str] = {}
    recorded = False
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if SCHEMA_KEY not in line[:20]:
                continue
            try:
                record = json.loads(line)[SCHEMA_KEY]
            except (ValueError, KeyError, TypeError):
                continue  # a line cut off by a crash: the reader reports it
            statements = record.get("sql") if isinstance(record, dict) else None
            if not isinstance(statements, list):
                continue  # not a schema record qprof wrote
            recorded = True
            for sql in statements:
                match = _OBJECT.match(str(sql))
                if match is None:
                    continue
                kind, name = (
                    match.group(1).upper(),
                    match.group(2).strip('"`[]').lower(),
                )
                if name.startswith("sqlite_"):
                    continue
                # Limitation: databases are merged by name, the last definition of a
                # table winning; statements written for an earlier one may not plan.
                objects.pop((kind, name), None)
                objects[(kind, name)] = str(sql)
    if not recorded:
        return None
    ordered = sorted(objects.items(), key=lambda item: _ORDER[item[0][0]])
    return [sql for _key, sql in ordered]


def open_replica(statements: list[str]) -> apsw.Connection:
    """Return an in-memory database built from ``statements``.

    A statement SQLite refuses (a virtual table whose module is missing, say)
    is skipped: the replica holds everything else.
    """
    connection = apsw.Connection(":memory:")
    for sql in statements:
        try:
            connection.execute(sql)
        except apsw.Error:
            # Limitation: objects SQLite cannot rebuild here (a missing virtual table
            # module, a view over a skipped table) are left out of the replica.
            continue
    _drop_broken_views(connection)
    return connection


def _drop_broken_views(connection: apsw.Connection) -> None:
    """Drop the views that no longer compile against the tables the merge kept.

    SQLite accepts ``CREATE VIEW`` over a column that is missing and fails only
    when the view is used: merged from many test databases, a view can outlive
    the table version it was written for.
    """
    views = connection.execute("SELECT name FROM sqlite_schema WHERE type = 'view'")
    for (name,) in views.fetchall():
        quoted = '"' + str(name).replace('"', '""') + '"'
        try:
            connection.execute(f"SELECT * FROM {quoted} LIMIT 0").fetchall()
        except apsw.Error:
            connection.execute(f"DROP VIEW {quoted}")
