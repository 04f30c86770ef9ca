"""Framework and shell logs: SQLAlchemy, Django, Rails, the sqlite3 shell, Python's trace.

Expected counts are worked out from what the generating apps did (see
tests/data/logs/README.md) and from reading the logs; each test says how.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import shutil
from collections import Counter
from pathlib import Path

import pytest

from qprof.errors import WorkloadError
from qprof.fingerprint import fingerprint_sql
from qprof.readers import ReadProblems, detect_format, format_names, read_workload
from qprof.readers.literals import parse_python_literal, parse_ruby_literal
from qprof.replay import replay_workload

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
LOGS = Path(__file__).resolve().parent / "data" / "logs"
"""Copies of ../shared/logs (their README.md says what each one is)."""
SAKILA = SHARED / "realdata" / "sakila" / "sakila.db"
AGENTS = ROOT / "sample_workloads" / "agents"

needs_shared = pytest.mark.skipif(
    not LOGS.is_dir(), reason="tests/data/logs is missing"
)


def statements(path, fmt=None, strict=False):
    problems = ReadProblems(strict=strict)
    return list(read_workload(path, fmt, problems)), problems


def fingerprint_counts(found) -> Counter[str]:
    return Counter(fingerprint_sql(s.sql).text for s in found)


# Samples: detection ---------------------------------------------------------

SAMPLE_FORMATS = {
    "sqlalchemy_echo.log": "sqlalchemy",
    "sqlalchemy_logging_basicconfig.log": "sqlalchemy",
    "django_db_backends.log": "django",
    "rails_activerecord.log": "rails",
    "rails_activerecord_color.log": "rails",
    "sqlite3_cli_trace_default.txt": "sqlite_trace",
    "sqlite3_cli_trace_expanded.txt": "sqlite_trace",
    "sqlite3_cli_trace_profile.txt": "sqlite_trace",
    "sqlite3_cli_trace_stmtprofileexpanded.txt": "sqlite_trace",
    "sqlite3_cli_trace_stdout_interleaved.txt": "sqlite_trace",
    "python_sqlite3_trace_callback.log": "python_trace",
    "python_sqlite3_trace_callback.jsonl": "python_trace",
    "sqlite3_cli_session.sql": "sql",
}


def test_format_names_list_every_reader_with_sql_last():
    assert format_names() == [
        "qprof",
        "sqlalchemy",
        "django",
        "rails",
        "sqlite_trace",
        "python_trace",
        "sql",
    ]


@needs_shared
@pytest.mark.parametrize("name", sorted(SAMPLE_FORMATS))
def test_detects_each_sample_as_its_format(name):
    assert detect_format(LOGS / name) == SAMPLE_FORMATS[name]


# Samples: SQLAlchemy ----------------------------------------------------------


@needs_shared
def test_reads_sqlalchemy_echo_log_with_bound_parameters():
    found, problems = statements(LOGS / "sqlalchemy_echo.log")
    # Schema: BEGIN, 4 PRAGMA table_info, 2 CREATE TABLE, COMMIT (8); inserts:
    # BEGIN, 4 artists, 12 albums one by one (insertmanyvalues), COMMIT (18);
    # queries: BEGIN, artists, 4 N+1 album loads, 2 by year, GROUP BY, LIKE,
    # load 1, UPDATE, load 2, DELETE, COMMIT (15).
    assert len(found) == 8 + 18 + 15
    assert problems.count == 0
    assert [s.sql for s in found[:2]] == ["BEGIN", 'PRAGMA main.table_info("artist")']
    assert found[5].sql.startswith("CREATE TABLE artist (") and found[5].params is None
    inserts = [s for s in found if s.sql.startswith("INSERT INTO artist")]
    assert [s.params for s in inserts] == [
        ("AC/DC",),
        ("Accept",),
        ("Aerosmith",),
        ("O'Brien & Sons",),
    ]
    loop = [s for s in found if "WHERE ? = album.artist_id" in s.sql]
    assert [s.params for s in loop] == [(1,), (2,), (3,), (4,)]
    assert loop[0].sql == (
        "SELECT album.id, album.title, album.year, album.artist_id \n"
        "FROM album \nWHERE ? = album.artist_id"
    )
    assert found[-1].sql == "COMMIT" and found[-1].line == 111
    assert found[1].ts is not None


@needs_shared
def test_reads_basicconfig_log_and_reports_the_parameter_sets_not_logged():
    found, problems = statements(LOGS / "sqlalchemy_logging_basicconfig.log")
    # BEGIN, 2 PRAGMA, CREATE, COMMIT; BEGIN, the 10 logged of 25 insert sets,
    # COMMIT; BEGIN, 3 SELECTs, ROLLBACK.
    assert len(found) == 5 + 12 + 5
    inserts = [s for s in found if s.sql.startswith("INSERT INTO track")]
    assert len(inserts) == 10
    assert inserts[0].params == ("Song 0", "Angus Young", 200000)
    assert inserts[7].params == ("Song 7", None, 200007)
    assert inserts[8].params == ("Song 23", None, 200023)
    assert problems.count == 1
    problem = problems.problems[0]
    assert (problem.line, problem.found) == (20, "10 of 25 sets logged")
    assert "15 parameter sets were not logged" in problem.hint
    paged = next(s for s in found if "OFFSET" in s.sql)
    assert paged.params == (200010, 5, 0)
    assert found[-1].sql == "ROLLBACK"


@needs_shared
def test_truncated_executemany_is_fatal_under_strict():
    with pytest.raises(WorkloadError) as raised:
        statements(LOGS / "sqlalchemy_logging_basicconfig.log", strict=True)
    assert raised.value.line == 20


# Samples: Django --------------------------------------------------------------


@needs_shared
def test_reads_django_log_once_per_statement_and_binds_executemany():
    found, problems = statements(LOGS / "django_db_backends.log")
    # 237 lines start "(0.000) " (4 of them records over 4 lines); the 59
    # "; (params ...)" schema duplicates are skipped; the executemany of 3
    # parameter sets is 3 statements: 237 + 2.
    assert len(found) == 239
    assert problems.count == 0
    creates = [s for s in found if s.sql.startswith('CREATE TABLE "shop_album"')]
    assert len(creates) == 1
    raw = [s for s in found if s.sql == "INSERT INTO shop_artist (name) VALUES (?)"]
    assert [s.params for s in raw] == [("Raw 0",), ("Raw 1",), ("Raw 2",)]
    assert raw[0].logged_ns == 3_000_000
    assert found[0].sql.startswith("SELECT name, type FROM sqlite_master\n")
    assert found[0].sql.endswith("ORDER BY name")
    loop = fingerprint_counts(
        s for s in found if 'FROM "shop_artist" WHERE "shop_artist"."id" =' in s.sql
    )
    assert list(loop.values()) == [12]  # the N+1: 4 artists x 3 albums
    like = next(s for s in found if s.sql.startswith('UPDATE "shop_album"'))
    assert like.sql.endswith("LIKE '%vol 2%' ESCAPE '\\'") and like.params is None
    assert like.logged_ns == 2_000_000


# Samples: Rails ---------------------------------------------------------------


@needs_shared
@pytest.mark.parametrize(
    "name", ["rails_activerecord.log", "rails_activerecord_color.log"]
)
def test_reads_rails_log_with_binds_as_positional_parameters(name):
    found, problems = statements(LOGS / name)
    # Migration: version check, 3 CREATE TABLE, 1 CREATE INDEX; metadata load;
    # 17 inserts (metadata, 4 artists, 12 albums) each in begin/commit: 51;
    # then 27 queries (12 of them the Artist Load N+1). The 4 migration runner
    # lines are not statements: 88 lines - 4.
    assert len(found) == 5 + 1 + 51 + 27
    assert problems.count == 0
    assert found[0].sql == "SELECT sqlite_version(*)"
    assert found[5].params == ("environment", 1)
    assert [s.sql for s in found[6:9:2]] == ["begin transaction", "commit transaction"]
    loop = [s for s in found if s.sql.endswith('WHERE "artists"."id" = ? LIMIT ?')]
    assert len(loop) == 12
    assert [s.params for s in loop[:4]] == [(1, 1), (1, 1), (1, 1), (2, 1)]
    artist = next(s for s in found if s.params and s.params[0] == "O'Brien & Sons")
    assert artist.sql.startswith('INSERT INTO "artists"')
    update_all = next(s for s in found if "LIKE '%vol 2%'" in s.sql)
    assert update_all.params == (2000,)
    assert found[-1].sql == "SELECT count(*) FROM albums WHERE year > 1990"


@needs_shared
def test_reads_rails_log_times_as_logged_ns():
    found, _ = statements(LOGS / "rails_activerecord.log")
    assert [s.logged_ns for s in found[:3]] == [500_000, 1_400_000, 900_000]


def test_rails_reader_skips_request_lines_keeps_callers_and_context(write_file):
    path = write_file(
        "development.log",
        'Started GET "/albums" for 127.0.0.1 at 2026-12-03 19:45:12 +0000\n'
        "Processing by AlbumsController#index as HTML\n"
        '  Album Load (0.3ms)  SELECT "albums".* FROM "albums" WHERE "albums"."title" = ?'
        '  [["title", "say \\"hi\\"\\n"]]\n'
        "  ↳ app/controllers/albums_controller.rb:5:in `index'\n"
        '  CACHE Album Load (0.0ms)  SELECT "albums".* FROM "albums"\n'
        "  Rendered albums/index.html.erb within layouts/application (Duration: 1.2ms)\n"
        "Completed 200 OK in 5ms (Views: 2.1ms | ActiveRecord: 0.3ms)\n"
        "something else entirely\n",
    )
    found, problems = statements(path, "rails")
    assert len(found) == 1
    assert found[0].params == ('say "hi"\n',)
    assert found[0].caller == "app/controllers/albums_controller.rb:5:in"
    assert found[0].context == "GET /albums"
    assert [(p.line, p.found) for p in problems.problems] == [
        (8, '"something else entirely"')
    ]


# Samples: the sqlite3 shell ---------------------------------------------------

# The session ran 6 statements of its own (2 with named parameters); the
# shell's .parameter bookkeeping on temp.sqlite_parameters is not replayed.
SESSION_STATEMENTS = 6


@needs_shared
@pytest.mark.parametrize(
    "name",
    [
        "sqlite3_cli_trace_default.txt",
        "sqlite3_cli_trace_stdout_interleaved.txt",
    ],
)
def test_reads_shell_trace_and_binds_named_parameters_from_the_shell(name):
    found, problems = statements(LOGS / name)
    assert len(found) == SESSION_STATEMENTS
    assert problems.count == 0  # result rows are not bad lines
    assert found[0].params == {"country": "Canada"}
    assert found[1].params == {"minlen": 180}
    assert found[1].sql == (
        "SELECT title, length FROM film WHERE length > $minlen AND rating = 'PG'\n"
        "  ORDER BY length DESC LIMIT 3;"
    )
    assert [s.params for s in found[2:]] == [None] * 4
    assert found[-1].sql == "SELECT count(*) FROM sales_by_film_category;"


@needs_shared
def test_reads_expanded_shell_trace_with_values_inline():
    found, _ = statements(LOGS / "sqlite3_cli_trace_expanded.txt")
    assert len(found) == SESSION_STATEMENTS
    assert "co.country = 'Canada'" in found[0].sql and found[0].params is None


@needs_shared
@pytest.mark.parametrize(
    "name, times",
    [
        ("sqlite3_cli_trace_profile.txt", [0, 1, 0, 1, 1, 21]),
        ("sqlite3_cli_trace_stmtprofileexpanded.txt", [1, 0, 0, 1, 2, 20]),
    ],
)
def test_reads_profiled_shell_trace_once_per_statement_with_its_time(name, times):
    found, _ = statements(LOGS / name)
    assert len(found) == SESSION_STATEMENTS
    assert [s.logged_ns for s in found] == [t * 1_000_000 for t in times]
    assert not any(s.sql.endswith("ns") for s in found)


def test_shell_trace_keeps_a_statement_traced_twice_without_profile(write_file):
    path = write_file(
        "t.txt",
        "-- TRIGGER x;\nSELECT 1;\n1\nSELECT 1;\n1\nSELECT 2; -- 5 ns\n",
    )
    found, problems = statements(path, "sqlite_trace")
    assert [(s.sql, s.logged_ns) for s in found] == [
        ("SELECT 1;", None),
        ("SELECT 1;", None),
        ("SELECT 2;", 5),
    ]
    assert problems.count == 0


# Samples: Python's sqlite3 trace callback ------------------------------------


@needs_shared
@pytest.mark.parametrize(
    "name", ["python_sqlite3_trace_callback.log", "python_sqlite3_trace_callback.jsonl"]
)
def test_reads_python_trace_without_trigger_duplicates_or_nested_events(name):
    found, problems = statements(LOGS / name)
    # 60 events: 24 "-- " nested ones are dropped; the actor INSERT (5 events),
    # the actor UPDATE (3) and each category INSERT (5 and 5) are one statement
    # each, 14 events fewer: 60 - 24 - 14 = 22.
    assert len(found) == 22
    assert problems.count == 0
    assert found[2].sql == "BEGIN"
    writes = [s.sql for s in found[3:7]]
    assert writes[0].startswith("INSERT INTO actor") and writes[1].startswith("UPDATE")
    assert "(17, 'Noir'" in writes[2] and "(18, 'Western'" in writes[3]
    counts = fingerprint_counts(found)
    assert counts["SELECT count(*) FROM rental WHERE customer_id = ?"] == 3
    assert found[18].sql.startswith("SELECT c.name, count(*)\n  FROM film_category")
    assert found[18].sql.endswith("LIMIT 1")
    assert [s.sql for s in found[19:]] == [
        "CREATE TEMP TABLE t(x);",
        "INSERT INTO t VALUES (1);",
        "DROP TABLE t;",
    ]


def test_python_trace_merges_repeated_writes_but_not_repeated_reads(write_file):
    path = write_file(
        "t.log",
        "SELECT 1\nSELECT 1\nUPDATE t SET a = 1\nUPDATE t SET a = 1\n"
        "-- UPDATE t2 SET b = ?\nUPDATE t SET a = 1\nINSERT INTO t\n  SELECT 2\n",
    )
    found, _ = statements(path, "python_trace")
    assert [s.sql for s in found] == [
        "SELECT 1",
        "SELECT 1",
        "UPDATE t SET a = 1",
        "INSERT INTO t\n  SELECT 2",
    ]


# Samples replay ---------------------------------------------------------------

FRAMEWORK_SAMPLES = {
    "sqlalchemy_echo.log": 41,
    "sqlalchemy_logging_basicconfig.log": 22,
    "django_db_backends.log": 239,
    "rails_activerecord.log": 84,
    "rails_activerecord_color.log": 84,
}
SHELL_SAMPLES = {
    "sqlite3_cli_trace_default.txt": 6,
    "sqlite3_cli_trace_expanded.txt": 6,
    "sqlite3_cli_trace_profile.txt": 6,
    "sqlite3_cli_trace_stmtprofileexpanded.txt": 6,
    "sqlite3_cli_trace_stdout_interleaved.txt": 6,
    "python_sqlite3_trace_callback.log": 22,
    "python_sqlite3_trace_callback.jsonl": 22,
}


@needs_shared
@pytest.mark.parametrize("name", sorted(FRAMEWORK_SAMPLES))
def test_framework_sample_replays_from_an_empty_database(name, tmp_path):
    # Each app's log starts with its own schema (create_all, migrate, the
    # Rails migration), so the database that matches the log is an empty one.
    database = tmp_path / "app.db"
    database.touch()
    profile = replay_workload(LOGS / name, database)
    assert profile.statements == FRAMEWORK_SAMPLES[name]
    assert profile.error_count == 0, profile.errors[:3]
    assert profile.mode == "snapshot"


@pytest.mark.skipif(
    not SAKILA.is_file(), reason="../shared/realdata/sakila is not beside this checkout"
)
@pytest.mark.parametrize("name", sorted(SHELL_SAMPLES))
def test_shell_sample_replays_on_a_copy_of_sakila(name, tmp_path):
    database = tmp_path / "sakila.db"
    shutil.copy(SAKILA, database)
    profile = replay_workload(LOGS / name, database)
    assert profile.statements == SHELL_SAMPLES[name]
    assert profile.error_count == 0, profile.errors[:3]


# Logs generated here by the frameworks themselves ---------------------------


def test_reads_back_a_log_sqlalchemy_writes(tmp_path):
    sqlalchemy = pytest.importorskip("sqlalchemy")
    log_path = tmp_path / "engine.log"
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'app.db'}", echo=True)
    handlers = logging.getLogger("sqlalchemy.engine.Engine").handlers
    streams = [h for h in handlers if isinstance(h, logging.StreamHandler)]
    with open(log_path, "w", encoding="utf-8") as out:
        previous = [h.setStream(out) for h in streams]
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql(
                    "CREATE TABLE artist (id INTEGER PRIMARY KEY, name TEXT)"
                )
                connection.execute(
                    sqlalchemy.text("INSERT INTO artist (name) VALUES (:name)"),
                    [{"name": "AC/DC"}, {"name": "O'Brien & Sons"}, {"name": "Accept"}],
                )
                for artist_id in (1, 2, 3):
                    connection.execute(
                        sqlalchemy.text("SELECT name FROM artist WHERE id = :id"),
                        {"id": artist_id},
                    )
        finally:
            for handler, stream in zip(streams, previous, strict=True):
                handler.setStream(stream or io.StringIO())
    engine.dispose()

    found, problems = statements(log_path)
    assert detect_format(log_path) == "sqlalchemy"
    assert problems.count == 0
    assert [(s.sql, s.params) for s in found] == [
        ("BEGIN", None),
        ("CREATE TABLE artist (id INTEGER PRIMARY KEY, name TEXT)", None),
        ("INSERT INTO artist (name) VALUES (?)", ("AC/DC",)),
        ("INSERT INTO artist (name) VALUES (?)", ("O'Brien & Sons",)),
        ("INSERT INTO artist (name) VALUES (?)", ("Accept",)),
        ("SELECT name FROM artist WHERE id = ?", (1,)),
        ("SELECT name FROM artist WHERE id = ?", (2,)),
        ("SELECT name FROM artist WHERE id = ?", (3,)),
        ("COMMIT", None),
    ]
    empty = tmp_path / "empty.db"
    empty.touch()
    profile = replay_workload(log_path, empty)
    assert (profile.statements, profile.error_count) == (9, 0)


def test_reads_back_a_log_django_writes(tmp_path):
    pytest.importorskip("django")
    from django.conf import settings

    if settings.configured:
        pytest.skip("Django settings were configured elsewhere in this process")
    import django

    settings.configure(
        DEBUG=True,
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(tmp_path / "app.db"),
            }
        },
    )
    django.setup()
    from django.db import connection, transaction

    log_path = tmp_path / "django.log"
    logger = logging.getLogger("django.db.backends")
    handler = logging.FileHandler(log_path, encoding="utf-8")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE artist (id INTEGER PRIMARY KEY, name TEXT)")
            cursor.executemany(
                "INSERT INTO artist (name) VALUES (%s)",
                [("AC/DC",), ("O'Brien & Sons",), ("100%",)],
            )
            cursor.execute("SELECT name FROM artist WHERE id = %s", [2])
            with transaction.atomic():
                cursor.execute(
                    "UPDATE artist SET name = %s WHERE name LIKE 'A%%'", ["ACDC"]
                )
        connection.close()
    finally:
        logger.removeHandler(handler)
        handler.close()

    found, problems = statements(log_path)
    assert detect_format(log_path) == "django"
    assert problems.count == 0
    assert [(s.sql, s.params) for s in found] == [
        ("CREATE TABLE artist (id INTEGER PRIMARY KEY, name TEXT)", None),
        ("INSERT INTO artist (name) VALUES (?)", ("AC/DC",)),
        ("INSERT INTO artist (name) VALUES (?)", ("O'Brien & Sons",)),
        ("INSERT INTO artist (name) VALUES (?)", ("100%",)),
        ("SELECT name FROM artist WHERE id = 2", None),
        ("BEGIN", None),
        ("UPDATE artist SET name = 'ACDC' WHERE name LIKE 'A%'", None),
        ("COMMIT", None),
    ]
    assert all(s.logged_ns is not None for s in found)
    empty = tmp_path / "empty.db"
    empty.touch()
    profile = replay_workload(log_path, empty)
    assert (profile.statements, profile.error_count) == (8, 0)


# The agents sample as SQLAlchemy and Django logged it -----------------------


def load_script(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def agents_db(tmp_path_factory) -> Path:
    build = load_script(AGENTS / "build_db.py")
    path = tmp_path_factory.mktemp("agents") / "agents.db"
    build.build_agents_db(path)
    return path


@pytest.mark.parametrize(
    "name, fmt",
    [("workload.sqlalchemy.log", "sqlalchemy"), ("workload.django.log", "django")],
)
def test_agents_framework_log_replays_like_the_trace(name, fmt, agents_db):
    trace = list(read_workload(AGENTS / "workload.jsonl"))
    log_path = AGENTS / name
    assert detect_format(log_path) == fmt

    profile = replay_workload(log_path, agents_db)

    assert profile.statements == len(trace) == 5733
    assert profile.error_count == 0, profile.errors[:3]
    assert profile.skipped_lines == 0
    assert set(profile.fingerprints) == {fingerprint_sql(s.sql).id for s in trace}


# Literal parsers ---------------------------------------------------------------


def test_parses_ruby_literals_without_evaluating_them():
    assert parse_ruby_literal(
        '[["a", "x\\ty\\u00e9"], ["b", -1.5e2], [nil, true]]'
    ) == [
        ["a", "x\tyé"],
        ["b", -150.0],
        [None, True],
    ]
    with pytest.raises(ValueError):
        parse_ruby_literal('[["a", File.read("x")]]')


def test_parses_python_reprs_drivers_print_and_refuses_code():
    assert parse_python_literal("(Decimal('1.5'), datetime.date(2024, 1, 2))") == (
        1.5,
        "2024-01-02",
    )
    with pytest.raises(ValueError):
        parse_python_literal("(__import__('os').system('true'),)")
