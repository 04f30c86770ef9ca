"""Write the agents workload as SQLAlchemy and Django really log it.

Reads ``workload.jsonl`` with qprof's reader and runs every statement through
SQLAlchemy (``create_engine(..., echo=True)``, ``exec_driver_sql``) and through
Django (``connection.cursor()`` with ``django.db.backends`` logged at DEBUG),
each on its own copy of the agents database, capturing the frameworks' own
log output:

- ``workload.sqlalchemy.log``: the ``echo=True`` format.
- ``workload.django.log``: the default handler's format (the bare message).

The engine runs in autocommit mode so that the workload's own ``BEGIN`` and
``COMMIT`` statements are the ones sent, as in the original trace. Django
takes ``%s`` placeholders, so ``?`` and ``:name`` become ``%s`` and
``%(name)s`` (and a literal ``%`` becomes ``%%``) before the call.

Usage::

    python sample_workloads/agents/make_framework_logs.py [--requests N]

Needs SQLAlchemy and Django (``pip install sqlalchemy django``).
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

from build_db import build_agents_db  # noqa: E402

from qprof.readers import read_workload  # noqa: E402
from qprof.trace import Statement  # noqa: E402

WORKLOAD = HERE / "workload.jsonl"
SQLALCHEMY_LOG = HERE / "workload.sqlalchemy.log"
DJANGO_LOG = HERE / "workload.django.log"

_DJANGO_TOKENS = re.compile(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")|(\?)|:(\w+)|(%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=0, help="only the first N requests (0: all)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qprof-framework-logs-") as tmp:
        database = pathlib.Path(tmp) / "agents.db"
        build_agents_db(database)
        statements = list(workload_statements(args.requests))
        copy = pathlib.Path(tmp) / "sqlalchemy.db"
        shutil.copy(database, copy)
        write_sqlalchemy_log(statements, copy, SQLALCHEMY_LOG)
        copy = pathlib.Path(tmp) / "django.db"
        shutil.copy(database, copy)
        write_django_log(statements, copy, DJANGO_LOG)
    for path in (SQLALCHEMY_LOG, DJANGO_LOG):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")


def workload_statements(requests: int = 0) -> Iterator[Statement]:
    """Yield the workload's statements, only those of the first ``requests`` if set."""
    contexts: list[str | None] = []
    for statement in read_workload(WORKLOAD):
        if statement.context not in contexts[-1:]:
            contexts.append(statement.context)
        if requests and len(contexts) > requests:
            return
        yield statement


def write_sqlalchemy_log(
    statements: list[Statement], database: pathlib.Path, out: pathlib.Path
) -> None:
    """Run ``statements`` through an ``echo=True`` engine, its log going to ``out``."""
    from sqlalchemy import create_engine

    engine_logger = logging.getLogger("sqlalchemy.engine.Engine")
    with open(out, "w", encoding="utf-8") as handle:
        engine = create_engine(
            f"sqlite:///{database}", echo=True, isolation_level="AUTOCOMMIT"
        )
        # echo=True installs a stdout handler on first use; point it at the file.
        with engine.connect() as connection:
            for handler in engine_logger.handlers:
                if isinstance(handler, logging.StreamHandler):
                    handler.setStream(handle)
            for statement in statements:
                connection.exec_driver_sql(statement.sql, _driver_params(statement))
        engine.dispose()


def write_django_log(
    statements: list[Statement], database: pathlib.Path, out: pathlib.Path
) -> None:
    """Run ``statements`` through Django's debug cursor, its SQL log going to ``out``."""
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=True,
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(database)}
        },
        LOGGING={
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "filename": str(out),
                    "mode": "w",
                }
            },
            "loggers": {"django.db.backends": {"handlers": ["file"], "level": "DEBUG"}},
        },
    )
    django.setup()
    from django.db import connection, reset_queries

    with connection.cursor() as cursor:
        for number, statement in enumerate(statements):
            sql, params = django_sql(statement)
            cursor.execute(sql, params)
            if number % 1000 == 0:
                reset_queries()  # DEBUG keeps every query in memory otherwise
    connection.close()
    logging.shutdown()


def django_sql(statement: Statement) -> tuple[str, Any]:
    """Return the statement in Django's paramstyle: ``%s`` or ``%(name)s``.

    >>> django_sql(Statement("SELECT '?%' WHERE a = ? AND b = :b", {"b": 1}, "w", 1))[0]
    "SELECT '?%%' WHERE a = %s AND b = %(b)s"
    """
    params = statement.params
    if params is None:
        return statement.sql, None  # Django formats only SQL that has params

    def convert(match: re.Match[str]) -> str:
        quoted, qmark, name, percent = match.groups()
        if quoted is not None:
            return quoted.replace("%", "%%")
        if qmark is not None:
            return "%s"
        if name is not None:
            return f"%({name})s" if isinstance(params, dict) else match.group()
        return "%%" if percent else match.group()

    sql = _DJANGO_TOKENS.sub(convert, statement.sql)
    return sql, (list(params) if isinstance(params, tuple) else params)


def _driver_params(statement: Statement) -> Any:
    if statement.params is None:
        return ()
    return statement.params


if __name__ == "__main__":
    main()
