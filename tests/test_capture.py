"""Capture: the tracing wrapper for apsw and sqlite3, its trace, and ``qprof run``."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import apsw
import pytest
from click.testing import CliRunner

import qprof
from qprof.analyze import Thresholds, analyze_profile
from qprof.capture import CaptureError, attach
from qprof.capture.parts import merge_parts
from qprof.capture.recorder import TEXT_KEPT
from qprof.cli import main
from qprof.loading import profile_trace
from qprof.readers import ReadProblems
from qprof.readers.qprof_trace import read_records
from qprof.replica import REPLICA_MODE

from .traces import trace_records as records

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "sample_workloads" / "app"
HERE = os.path.relpath(__file__)


def line_of(path: Path, text: str) -> int:
    """Return the 1-based line of ``path`` holding ``text`` (once)."""
    lines = [
        n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line
    ]
    assert len(lines) == 1, lines
    return lines[0]


def run_script(
    folder: Path, source: str, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``source`` as a Python script in ``folder`` with ``args`` and the trace path
    ``folder/t.jsonl`` last; raises ``subprocess.TimeoutExpired`` when it hangs."""
    script = folder / "script.py"
    script.write_text(source)
    return subprocess.run(
        [sys.executable, str(script), *args, str(folder / "t.jsonl")],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_records_stdlib_statement_with_caller_rows_and_measurements(tmp_path):
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace):
        db = sqlite3.connect(":memory:")
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER)")
        db.executemany("INSERT INTO t (x) VALUES (?)", [(i,) for i in range(10)])
        line = sys._getframe().f_lineno + 1
        rows = db.execute("SELECT * FROM t WHERE x >= ?", (7,)).fetchall()
        db.close()
    assert len(rows) == 3
    select = [r for r in records(trace) if r["sql"].startswith("SELECT")][0]
    assert select["caller"] == f"{HERE}:{line}"
    assert select["params"] == [7] and select["driver"] == "sqlite3"
    assert select["database"] == ":memory:" and select["thread"] == "MainThread"
    assert (
        select["measured"]["rows_returned"] == 3
        and select["measured"]["elapsed_ns"] > 0
    )
    insert = [r for r in records(trace) if r["sql"].startswith("INSERT")][0]
    assert insert["executemany"] == 10 and insert["measured"]["rows_changed"] == 10


def test_what_runs_of_a_statement_share_is_written_once_as_a_shape(tmp_path):
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace):
        db = sqlite3.connect(":memory:")
        for i in range(30):
            loop_line = sys._getframe().f_lineno + 1
            db.execute("SELECT ? + 1", (i,)).fetchall()
        other_line = sys._getframe().f_lineno + 1
        db.execute("SELECT ? + 1", (99,)).fetchall()
        for values in ((None, 1.5), (float("nan"), "x" * 5000)):  # encoded by hand
            db.execute("SELECT ?, ?", values).fetchall()
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    shapes = [line["qprof_shape"] for line in lines if "qprof_shape" in line]
    assert [(s["id"], s["sql"], s["caller"]) for s in shapes[:2]] == [
        (1, "SELECT ? + 1", f"{HERE}:{loop_line}"),
        (2, "SELECT ? + 1", f"{HERE}:{other_line}"),
    ]
    assert len(shapes) == 3
    statements = [line for line in lines if "shape" in line]
    assert [s["shape"] for s in statements] == [1] * 30 + [2, 3, 3]
    assert all("sql" not in s and "caller" not in s for s in statements)
    read = records(trace)
    assert [r["params"] for r in read[:31]] == [[i] for i in range(30)] + [[99]]
    assert read[31]["params"] == [None, 1.5]
    assert read[32]["params"][0] is None and read[32]["params"][1].startswith(
        "x" * TEXT_KEPT + "…"
    )
    assert {r["thread"] for r in read} == {"MainThread"}


def test_a_batch_lost_to_a_failed_write_is_counted_and_its_shapes_defined_again(
    tmp_path, monkeypatch
):
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace) as tracer:
        db = sqlite3.connect(":memory:")

        def ask(value: int) -> None:
            db.execute("SELECT ?", (value,)).fetchall()  # one caller: one shape

        ask(1)
        file = tracer.recorder._file
        write = file.write
        monkeypatch.setattr(file, "write", lambda data: _full())
        tracer.recorder.flush()  # the disk is full: this batch is lost
        monkeypatch.setattr(file, "write", write)
        ask(2)
    assert tracer.failures == 1
    assert [r["params"] for r in records(trace)] == [[2]]
    assert trace.read_text().count('"qprof_shape"') == 1


def _full() -> None:
    raise OSError(28, "No space left on device")


def test_binds_every_sqlite_type_and_shortens_long_values(tmp_path):
    trace = tmp_path / "t.jsonl"
    long_text = "a" * 5000
    with qprof.trace(trace):
        db = sqlite3.connect(":memory:")
        db.execute("CREATE TABLE v (a, b, c, d, e, f)")
        values = (None, 42, 2.5, "text", b"\x00\xff", long_text)
        db.execute("INSERT INTO v VALUES (?, ?, ?, ?, ?, ?)", values)
        db.execute(
            "INSERT INTO v VALUES (:a, 1, 1, 1, 1, :b)", {"a": b"x" * 1000, "b": 7}
        )
    first, second = [
        r["params"] for r in records(trace) if r["sql"].startswith("INSERT")
    ]
    assert first[:5] == [None, 42, 2.5, "text", {"$blob": "00ff"}]
    assert first[5].startswith("a" * TEXT_KEPT) and first[5].endswith(
        "[qprof: 5000 chars long]"
    )
    assert len(first[5]) < 300
    assert second["a"] == {"$blob": "78" * 64, "$length": 1000} and second["b"] == 7


def test_adapted_values_are_recorded_as_sqlite3_bound_them(tmp_path, monkeypatch):
    import decimal

    monkeypatch.setitem(
        sqlite3.adapters, (decimal.Decimal, sqlite3.PrepareProtocol), str
    )

    class Point:
        def __conform__(self, protocol: object) -> str:
            return "1;2"

    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace):
        db = sqlite3.connect(":memory:")
        db.execute("SELECT ?, ?", (decimal.Decimal("1.10"), Point())).fetchall()
        db.execute("SELECT :a", {"a": decimal.Decimal("2.5")}).fetchall()
        for wrong in (5, "ab"):  # bindings sqlite3 refuses
            with pytest.raises(sqlite3.ProgrammingError):
                db.execute("SELECT ?", wrong)
    found = records(trace)
    assert [r.get("params") for r in found] == [
        ["1.10", "1;2"],
        {"a": "2.5"},
        None,  # not a sequence: no bindings recorded
        ["a", "b"],  # a str is a sequence to sqlite3: two values for one ?
    ]
    assert all(r["measured"].get("error") for r in found[2:])


def test_writes_infinities_and_nan_as_sqlite_binds_them(tmp_path):
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace):
        db = sqlite3.connect(":memory:")
        stored = db.execute(
            "SELECT ?, ?, ? IS NULL", (float("inf"), float("-inf"), float("nan"))
        ).fetchone()
    assert stored == (float("inf"), float("-inf"), 1)  # SQLite binds NaN as NULL
    (select,) = records(trace)
    assert select["params"] == [{"$real": "inf"}, {"$real": "-inf"}, None]
    (statement,) = [s for s, _r in read_records(trace, ReadProblems())]
    assert statement.params == (float("inf"), float("-inf"), None)


def test_callers_on_two_lines_of_one_function_are_told_apart(tmp_path):
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace):
        db = sqlite3.connect(":memory:")
        first = sys._getframe().f_lineno + 2
        for _ in range(3):
            db.execute("SELECT 1").fetchall()
            db.execute("SELECT 2").fetchall()
    callers = [(r["sql"], r["caller"]) for r in records(trace)]
    assert (
        callers
        == [
            ("SELECT 1", f"{HERE}:{first}"),
            ("SELECT 2", f"{HERE}:{first + 1}"),
        ]
        * 3
    )


@pytest.mark.parametrize("driver", ["sqlite3", "apsw"])
def test_a_full_buffer_waits_for_the_rows_of_a_cursor_being_read(
    tmp_path, monkeypatch, driver
):
    from qprof.capture import recorder

    monkeypatch.setattr(recorder, "FLUSH_EVERY", 6)  # forced past 12 records
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace):
        if driver == "apsw":
            db = apsw.Connection(":memory:")
        else:
            db = sqlite3.connect(":memory:")
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        db.execute("INSERT INTO t VALUES (1), (2), (3), (4), (5), (6)")
        for (id_,) in db.execute("SELECT id FROM t ORDER BY id"):
            db.execute("SELECT ? * 2", (id_,)).fetchall()
            if id_ == 6:
                written_early = trace.read_text()
    found = records(trace)
    parent = found[2]
    assert parent["sql"] == "SELECT id FROM t ORDER BY id"
    assert parent["measured"]["rows_returned"] == 6
    assert [r["params"] for r in found[3:]] == [[i] for i in range(1, 7)]
    # The statements before the open parent were written while it was being read;
    # it and those after it waited.
    assert "CREATE TABLE t" in written_early and "ORDER BY id" not in written_early


def test_an_adapted_value_whose_repr_raises_neither_breaks_the_app_nor_the_trace(
    tmp_path,
):
    class Opaque:
        def __repr__(self):
            raise RuntimeError("no repr")

    sqlite3.register_adapter(Opaque, lambda value: 42)
    trace = tmp_path / "t.jsonl"
    try:
        with qprof.trace(trace) as tracer:
            db = sqlite3.connect(":memory:")
            db.execute("CREATE TABLE t (a)")
            db.execute("INSERT INTO t VALUES (?)", (Opaque(),))
            row = db.execute("SELECT a FROM t").fetchone()
            with pytest.raises(TypeError):  # apsw has no adapters: it refuses it
                apsw.Connection(":memory:").execute("SELECT ?", (Opaque(),))
    finally:
        del sqlite3.adapters[(Opaque, sqlite3.PrepareProtocol)]
    assert row == (42,) and tracer.failures == 0
    found = records(trace)
    insert = [r for r in found if r["sql"].startswith("INSERT")][0]
    assert insert["params"] == [42]  # as the adapter bound it
    refused = [r for r in found if r["driver"] == "apsw"][0]
    assert refused["params"] == ["<Opaque>"]  # its type, as its repr raises


def test_a_row_passed_as_positional_values_is_recorded_as_a_list(tmp_path):
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace):
        db = sqlite3.connect(":memory:")
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT 1 AS a, 'x' AS b").fetchone()
        db.execute("SELECT ?, ?", row).fetchall()
    (_first, second) = records(trace)
    assert second["params"] == [1, "x"]


def test_a_statement_on_a_closed_connection_fails_as_untraced_and_is_recorded(
    tmp_path,
):
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace) as tracer:
        db = sqlite3.connect(":memory:")
        cursor = db.cursor()
        db.close()
        for run in (db.execute, cursor.execute):
            with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
                run("SELECT 1")
        other = sqlite3.connect(":memory:")
        other.execute("SELECT 2").fetchall()
        closed = apsw.Connection(":memory:")
        apsw_cursor = closed.cursor()
        closed.close()
        with pytest.raises(apsw.CursorClosedError):
            apsw_cursor.execute("SELECT 3")
    found = records(trace)  # the connection's execute failed making its cursor
    assert [r["sql"] for r in found] == ["SELECT 1", "SELECT 2", "SELECT 3"]
    analyzed = CliRunner().invoke(main, ["analyze", str(trace), "--json"])
    errors = json.loads(analyzed.stdout)["errors"]
    assert [e["caller"].split(":")[0] for e in errors] == [
        HERE,
        HERE,
    ]  # the app's lines
    assert found[0]["measured"]["error"].startswith("ProgrammingError")
    assert found[2]["measured"]["error"].startswith("CursorClosedError")
    assert tracer.failures == 0  # the application's error, not the tracer's


def test_keeps_a_custom_factory_and_records_the_sql_sqlite_gets(tmp_path):
    class Rewriting(sqlite3.Cursor):
        def execute(self, sql, params=()):  # as Django's SQLiteCursorWrapper does
            return super().execute(sql.replace("%s", "?"), params)

    class MyConnection(sqlite3.Connection):
        def cursor(self, factory=None):
            return super().cursor(factory or Rewriting)

    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace):
        db = sqlite3.connect(":memory:", factory=MyConnection)
        assert isinstance(db, MyConnection)
        cursor = db.cursor()
        cursor.execute("SELECT %s + 1", (1,))
        assert isinstance(cursor, Rewriting) and cursor.fetchone() == (2,)
    assert [r["sql"] for r in records(trace)] == ["SELECT ? + 1"]


def test_apsw_records_counters_rows_and_errors(tmp_path):
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace):
        db = apsw.Connection(":memory:")
        db.execute("CREATE TABLE t (x); INSERT INTO t VALUES (1), (2), (3)")
        assert [r for r in db.execute("SELECT x FROM t WHERE x > ?", (1,))] == [
            (2,),
            (3,),
        ]
        with pytest.raises(apsw.SQLError):
            db.execute("SELECT nope FROM t")
    found = records(trace)
    script, select, failed = found
    assert script["measured"]["rows_changed"] == 3 and script["driver"] == "apsw"
    assert select["measured"]["rows_returned"] == 2
    assert (
        select["measured"]["vm_step"] > 0 and select["measured"]["fullscan_step"] >= 2
    )
    assert failed["measured"]["error"].startswith("SQLError")


def test_apsw_counts_rows_fetched_one_by_one_then_all_at_once(tmp_path):
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace):
        db = apsw.Connection(":memory:")
        db.execute("CREATE TABLE t (a); INSERT INTO t VALUES (1), (2), (3)")
        cursor = db.cursor()
        cursor.execute("SELECT a FROM t ORDER BY a")
        assert (cursor.fetchone(), cursor.fetchall()) == ((1,), [(2,), (3,)])
        assert db.execute("SELECT a FROM t WHERE a > ?", (1,)).fetchall() == [
            (2,),
            (3,),
        ]
    _script, mixed, at_once = records(trace)
    assert mixed["measured"]["rows_returned"] == 3
    assert at_once["measured"]["rows_returned"] == 2
    assert at_once["measured"]["fullscan_step"] == 2  # steps from row 1 to 2 to 3


def test_apsw_counts_rows_of_loops_get_and_a_loop_left_for_fetchall(tmp_path):
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace):
        db = apsw.Connection(":memory:")
        db.execute("CREATE TABLE t (a); INSERT INTO t VALUES (1), (2), (3), (4)")
        assert [row for row in db.execute("SELECT a FROM t")] == [
            (1,),
            (2,),
            (3,),
            (4,),
        ]
        assert db.execute("SELECT a FROM t WHERE a > 2").get == [3, 4]
        cursor = db.execute("SELECT a FROM t ORDER BY a DESC")
        for row in cursor:
            assert row == (4,)
            break
        assert cursor.fetchall() == [(3,), (2,), (1,)]
        assert db.execute("SELECT count(*) FROM t").get == 4
    rows = [r["measured"]["rows_returned"] for r in records(trace)]
    assert rows == [0, 4, 2, 4, 1]


def test_threads_and_several_connections_each_keep_their_records(tmp_path):
    trace = tmp_path / "t.jsonl"

    def work(number: int) -> None:
        db = sqlite3.connect(tmp_path / f"db{number}.sqlite")
        db.execute("CREATE TABLE IF NOT EXISTS t (x)")
        with qprof.context(f"worker {number}"):
            for i in range(50):
                db.execute("INSERT INTO t VALUES (?)", (i,))
        db.commit()
        db.close()

    with qprof.trace(trace):
        threads = [
            threading.Thread(target=work, args=(n,), name=f"w{n}") for n in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    inserts = [r for r in records(trace) if r["sql"].startswith("INSERT")]
    assert len(inserts) == 200
    assert len({r["connection"] for r in inserts}) == 4
    assert {r["thread"] for r in inserts} == {"w0", "w1", "w2", "w3"}
    assert {(r["thread"], r["context"]) for r in inserts} == {
        (f"w{n}", f"worker {n}") for n in range(4)
    }


class _Subclass(sqlite3.Connection):
    pass


def test_attach_traces_connections_opened_before(tmp_path):
    plain, subclassed = (
        sqlite3.connect(":memory:"),
        sqlite3.connect(":memory:", factory=_Subclass),
    )
    other = apsw.Connection(":memory:")
    with pytest.raises(CaptureError):
        attach(subclassed)
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace, context="early"):
        attach(subclassed)
        attach(other)
        with pytest.raises(CaptureError):
            attach(plain)
        subclassed.execute("SELECT 1").fetchall()
        other.execute("SELECT 2").fetchall()
    assert [(r["sql"], r["context"]) for r in records(trace)] == [
        ("SELECT 1", "early"),
        ("SELECT 2", "early"),
    ]


def test_an_error_inside_the_tracer_is_counted_not_raised(tmp_path, monkeypatch):
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace) as tracer:
        monkeypatch.setattr(tracer.recorder, "caller", lambda frame: 1 / 0)
        db = sqlite3.connect(":memory:")
        assert db.execute("SELECT 41 + 1").fetchone() == (42,)
    assert tracer.failures == 1
    assert '"failures": 1' in trace.read_text().splitlines()[-1]


def test_statements_that_fail_to_be_written_at_the_end_count_in_the_last_record(
    tmp_path, monkeypatch
):
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace) as tracer:
        recorder = tracer.recorder
        real_line = recorder.line

        def line(record: object) -> bytes:
            if type(record) is list:
                raise ValueError("cannot encode it")
            return real_line(record)

        monkeypatch.setattr(recorder, "line", line)
        db = sqlite3.connect(":memory:")
        for i in range(3):
            db.execute("SELECT ?", (i,)).fetchall()
    assert tracer.failures == 3
    last = json.loads(trace.read_text().splitlines()[-1])
    assert last["qprof_capture"]["failures"] == 3


def test_analyzes_an_in_memory_database_on_a_replica_of_its_schema(tmp_path):
    sys.path.insert(0, str(APP))
    try:
        import repository
    finally:
        sys.path.remove(str(APP))
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace, context="list page"):
        db = repository.connect()
        repository.seed(db)
        repository.list_projects_with_owners(db)
        repository.find_tasks_by_status(db, "done")
        db.close()
    profile = profile_trace(trace, None)
    assert profile.mode == REPLICA_MODE
    analysis = analyze_profile(profile, None, Thresholds(scan_min_rows=0))
    kinds = {(f.kind, f.table, f.columns) for f in analysis.findings}
    assert ("unindexed_filter", "tasks", ("status",)) in kinds
    loop = [
        f for f in analysis.findings if f.kind == "n_plus_one" and f.table == "users"
    ][0]
    line = line_of(APP / "repository.py", "owner = connection.execute(")
    caller = f"sample_workloads/app/repository.py:{line}"
    assert profile.fingerprints[loop.fingerprint].count == 8
    assert os.path.relpath(ROOT / caller) == os.path.relpath(
        list(profile.fingerprints[loop.fingerprint].callers)[0]
    )
    frames = qprof.load(trace)  # no database: the same replica
    assert len(frames.statements) == profile.statements
    assert repr(frames).startswith(f"<qprof Profile of {trace}: {profile.statements} ")


def test_the_caller_is_the_apps_line_past_installed_packages_and_orms(
    tmp_path, monkeypatch
):
    from qprof.capture import callers

    layer = tmp_path / "fakeorm"
    layer.mkdir()
    (layer / "__init__.py").write_text(
        "def run(db, sql):\n    return db.execute(sql).fetchall()\n"
    )
    installed = tmp_path / "site-packages"  # an installed web framework
    (installed / "fakeweb").mkdir(parents=True)
    (installed / "fakeweb" / "__init__.py").write_text(
        "def handle(view, *args):\n    return view(*args)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(installed))
    monkeypatch.setattr(callers, "_DATA_LAYERS", ("fakeorm",))
    import fakeorm
    import fakeweb

    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace):
        db = sqlite3.connect(":memory:", check_same_thread=False)
        line = sys._getframe().f_lineno + 1
        fakeweb.handle(fakeorm.run, db, "SELECT 1")
        for target, args in (
            (fakeorm.run, (db, "SELECT 2")),
            (fakeweb.handle, (fakeorm.run, db, "SELECT 3")),
        ):
            worker = threading.Thread(target=target, args=args)
            worker.start()
            worker.join()
    callers = {r["sql"]: r["caller"] for r in records(trace)}
    assert callers["SELECT 1"] == f"{HERE}:{line}"
    assert callers["SELECT 2"].endswith("fakeorm/__init__.py:2")
    assert callers["SELECT 3"].endswith("site-packages/fakeweb/__init__.py:2")


def test_a_relative_database_path_is_recorded_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace):
        sqlite3.connect("app.db").execute("SELECT 1").fetchall()
    assert [r["database"] for r in records(trace)] == [str(tmp_path / "app.db")]


def test_a_working_directory_removed_mid_trace_keeps_callers(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    gone = tmp_path / "gone"
    gone.mkdir()
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace) as tracer:
        db = sqlite3.connect(":memory:")
        os.chdir(gone)
        gone.rmdir()
        line = sys._getframe().f_lineno + 1
        db.execute("SELECT 1").fetchall()
        os.chdir(ROOT)
    assert tracer.failures == 0
    assert [r["caller"] for r in records(trace)] == [
        f"{os.path.relpath(__file__, ROOT)}:{line}"
    ]


def test_schema_lookups_and_repeated_ddl_in_a_test_are_not_n_plus_one(tmp_path):
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace, context="tests/test_x.py::test_tables"):
        for number in range(8):
            db = sqlite3.connect(":memory:")
            # One fingerprint, other literals: a loop, if DDL could be one.
            db.execute(f"CREATE TABLE t (value INTEGER CHECK (value > {number}))")
            db.execute(
                "SELECT sql FROM sqlite_master WHERE name = ?", (f"t{number}",)
            ).fetchall()
            db.execute(  # one sqlglot cannot read (a parameter named like)
                "SELECT name FROM sqlite_master WHERE rootpage = 0 AND sql LIKE :like",
                {"like": f"%t{number}%"},
            ).fetchall()
            db.close()
        db = sqlite3.connect(":memory:")
        db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, owner INTEGER)")
        for owner in range(8):
            db.execute("SELECT id FROM items WHERE owner = ?", (owner,)).fetchall()
    profile = profile_trace(trace, None)
    analysis = analyze_profile(profile, None, Thresholds(scan_min_rows=0))
    loops = [(f.kind, f.table) for f in analysis.findings if f.kind == "n_plus_one"]
    assert loops == [("n_plus_one", "items")]


def test_a_view_left_broken_by_merging_test_databases_is_dropped(tmp_path):
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace):
        first = sqlite3.connect(tmp_path / "first.db")
        first.executescript(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);"
            "CREATE VIEW named AS SELECT id, name FROM items;"
        )
        first.execute("SELECT * FROM named").fetchall()
        first.close()
        second = sqlite3.connect(tmp_path / "second.db")  # another test's table
        second.execute("CREATE TABLE items (code TEXT, name TEXT)")
        second.execute("SELECT name FROM items WHERE code = ?", ("x",)).fetchall()
        second.close()
    profile = profile_trace(trace, None)
    assert set(profile.schema.tables) == {"items"}
    assert set(profile.schema.tables["items"].columns) == {"code", "name"}
    analysis = analyze_profile(profile, None, Thresholds(scan_min_rows=0))
    assert ("unindexed_filter", "items", ("code",)) in {
        (f.kind, f.table, f.columns) for f in analysis.findings
    }


def test_reads_the_schema_of_a_database_with_a_broken_view():
    from qprof.schema import read_schema

    db = apsw.Connection(":memory:")
    db.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a); CREATE VIEW v AS SELECT a FROM t;"
        "DROP TABLE t; CREATE TABLE t (id INTEGER PRIMARY KEY, b)"
    )
    schema = read_schema(db)
    assert set(schema.tables) == {"t", "v"}
    assert set(schema.tables["t"].columns) == {"id", "b"}
    assert schema.tables["v"].columns == {}


def test_finds_the_n_plus_one_of_sqlalchemy_orm_code_at_its_caller(tmp_path):
    pytest.importorskip("sqlalchemy")
    sys.path.insert(0, str(APP))
    try:
        import orm
    finally:
        sys.path.remove(str(APP))
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace, context="orm"):
        session = orm.make_session()
        orm.seed(session)
        orm.project_owner_names(session)
    profile = profile_trace(trace, None)
    analysis = analyze_profile(profile, None, Thresholds(scan_min_rows=0))
    loops = [
        f for f in analysis.findings if f.kind == "n_plus_one" and f.table == "users"
    ]
    assert len(loops) == 1
    fp = profile.fingerprints[loops[0].fingerprint]
    line = line_of(APP / "orm.py", "project.owner.name")
    assert fp.count == 8
    assert [
        os.path.abspath(c.rsplit(":", 1)[0]) + ":" + c.rsplit(":", 1)[1]
        for c in fp.callers
    ] == [f"{APP / 'orm.py'}:{line}"]


_GC_SCRIPT = """
import gc, sqlite3, threading, apsw, sys
import qprof
URI = "file:memdb1?mode=memory&cache=shared"
# apsw bundles its own SQLite, built without shared cache: share through the memdb VFS.
APSW_URI = "file:/qprof-gc?vfs=memdb"
FLAGS = apsw.SQLITE_OPEN_URI | apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE

class Closer:
    def __init__(self, connection):
        self.connection = connection
        self.cycle = self  # freed only by the cyclic GC, at any allocation
    def __del__(self):
        self.connection.close()

def stdlib_worker(n):
    keep = sqlite3.connect(URI, uri=True, check_same_thread=False, isolation_level=None)
    for i in range(300):
        Closer(sqlite3.connect(URI, uri=True, check_same_thread=False))
        try:
            keep.execute("INSERT INTO t VALUES (?, ?)", (n, "x" * 50))
            list(keep.execute("SELECT * FROM t WHERE a = ? LIMIT 5", (n,)))
        except sqlite3.OperationalError:  # shared-cache table locks
            pass
        if i % 50 == 0:
            gc.collect()
    keep.close()

def apsw_worker(n):
    keep = apsw.Connection(APSW_URI, flags=FLAGS)
    for i in range(300):
        Closer(apsw.Connection(APSW_URI, flags=FLAGS))
        try:
            keep.execute("INSERT INTO t VALUES (?, ?)", (n, "x" * 50))
            list(keep.execute("SELECT * FROM t WHERE a = ? LIMIT 5", (n,)))
        except (apsw.LockedError, apsw.BusyError):
            pass
        if i % 50 == 0:
            gc.collect()
    keep.close()

gc.set_threshold(5, 1, 1)
with qprof.trace(sys.argv[1]):
    root = sqlite3.connect(URI, uri=True, check_same_thread=False)
    root.execute("CREATE TABLE t (a, b)")
    root.commit()
    apsw_root = apsw.Connection(APSW_URI, flags=FLAGS)
    apsw_root.execute("CREATE TABLE t (a, b)")
    threads = [threading.Thread(target=f, args=(n,)) for n in range(3)
               for f in (stdlib_worker, apsw_worker)]
    for t in threads: t.start()
    for t in threads: t.join()
    root.close()
    apsw_root.close()
print("done")
"""


def test_shared_cache_and_garbage_collection_do_not_hang(tmp_path):
    trace = tmp_path / "t.jsonl"
    done = run_script(tmp_path, _GC_SCRIPT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "done" and "Traceback" not in done.stderr
    # Locked-table errors under shared cache vary the count; every worker must show up.
    assert len(records(trace)) > 1500
    assert len({r.get("thread") for r in records(trace)}) >= 7


_DEADLOCK_SCRIPT = """
import gc, sqlite3, sys
import qprof
URI = "file:qprof-deadlock?mode=memory&cache=shared"

class Closer:  # garbage the cyclic GC frees: its __del__ closes a connection
    def __init__(self, connection):
        self.connection = connection
        self.cycle = self
    def __del__(self):
        self.connection.close()

def run():
    root = sqlite3.connect(URI, uri=True)
    root.execute("CREATE TABLE t (a)")
    root.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    root.commit()
    if sys.argv[1] == "naive":  # a tracer that runs Python inside sqlite3_step
        root.set_trace_callback(lambda sql: gc.collect())
    gc.disable()  # the garbage waits for the next collection, wherever it runs
    for _ in range(5):
        Closer(sqlite3.connect(URI, uri=True))
    sys.setprofile(watch)
    rows = root.execute("SELECT count(*) FROM t").fetchall()
    sys.setprofile(None)
    print(rows, len(python_inside_sqlite), flush=True)
    gc.collect()

depth = [0]
python_inside_sqlite = []

def watch(frame, event, arg):  # note Python called while a sqlite3 method runs
    if event == "c_call" and isinstance(
        getattr(arg, "__self__", None), (sqlite3.Cursor, sqlite3.Connection)
    ):
        depth[0] += 1
    elif event in ("c_return", "c_exception") and depth[0] and isinstance(
        getattr(arg, "__self__", None), (sqlite3.Cursor, sqlite3.Connection)
    ):
        depth[0] -= 1
    elif event == "call" and depth[0]:
        python_inside_sqlite.append(frame.f_code.co_name)

if sys.argv[1] == "qprof":
    with qprof.trace(sys.argv[2]):
        run()
else:
    run()
"""


def test_the_shared_cache_deadlock_of_a_naive_tracer_does_not_happen(tmp_path):
    trace = tmp_path / "t.jsonl"

    def run(mode: str) -> subprocess.CompletedProcess[str] | None:
        try:
            return run_script(tmp_path, _DEADLOCK_SCRIPT, mode, timeout=5)
        except subprocess.TimeoutExpired:
            return None

    # A garbage collection inside the trace callback closes another connection to
    # the shared cache, which waits on the mutex the stepping statement holds.
    assert run("naive") is None
    done = run("qprof")
    assert done is not None and done.returncode == 0, done and done.stderr
    assert done.stdout.strip() == "[(100,)] 0"  # and no Python ran inside SQLite
    assert [r["sql"] for r in records(trace)][-1] == "SELECT count(*) FROM t"


def test_a_crash_mid_write_loads_up_to_the_last_whole_line(tmp_path):
    trace = tmp_path / "t.jsonl"
    script = textwrap.dedent(
        """
        import sqlite3, sys, qprof
        with qprof.trace(sys.argv[1]):
            db = sqlite3.connect(":memory:")
            while True:
                db.execute("SELECT ?, ?", (1, "x" * 200)).fetchall()
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(trace)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
            not trace.exists() or trace.stat().st_size < 2_000_000
        ):
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    problems = ReadProblems()
    loaded = list(read_records(trace, problems))
    assert len(loaded) > 1000
    cut = not trace.read_bytes().endswith(b"\n")
    assert problems.count == (1 if cut else 0)


def test_sigterm_flushes_the_buffer(tmp_path):
    trace = tmp_path / "t.jsonl"
    script = textwrap.dedent(
        """
        import os, signal, sqlite3, sys, qprof
        with qprof.trace(sys.argv[1]):
            db = sqlite3.connect(":memory:")
            for i in range(10):
                db.execute("SELECT ?", (i,)).fetchall()
            os.kill(os.getpid(), signal.SIGTERM)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(trace)], cwd=ROOT, timeout=60
    )
    assert done.returncode == -signal.SIGTERM
    assert len(records(trace)) == 10


def test_a_sigterm_that_cuts_into_the_tracers_own_flush_waits_for_its_batch(
    tmp_path, monkeypatch
):
    trace = tmp_path / "t.jsonl"
    seen: list[int] = []  # statement lines in the file when the app's handler ran
    previous = signal.signal(
        signal.SIGTERM, lambda number, frame: seen.append(_statement_lines(trace))
    )
    try:
        with qprof.trace(trace) as tracer:
            db = sqlite3.connect(":memory:")
            for i in range(3):
                db.execute("SELECT ?", (i,)).fetchall()
            file = tracer.recorder._file
            real_write = file.write

            def write(data: bytes) -> int:
                os.kill(os.getpid(), signal.SIGTERM)  # handled inside the flush
                return real_write(data)

            monkeypatch.setattr(file, "write", write)
            tracer.recorder.flush()
            monkeypatch.setattr(file, "write", real_write)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [3]  # after the batch was written, once


def _statement_lines(trace: Path) -> int:
    return sum(line.startswith('{"shape"') for line in trace.read_text().splitlines())


def test_qprof_run_keeps_the_exit_code_and_prints_the_analysis(tmp_path):
    program = tmp_path / "app.py"
    program.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(APP)!r})
            import repository
            db = repository.connect()
            repository.seed(db)
            repository.find_tasks_by_status(db, "done")
            sys.exit(3)
            """
        )
    )
    out = tmp_path / "run.jsonl"
    result = CliRunner().invoke(
        main, ["run", "--out", str(out), "--", sys.executable, str(program)]
    )
    assert result.exit_code == 3, result.output
    assert "unindexed_filter" in result.output and "tasks(status)" in result.output
    assert (
        "plans taken on an empty replica of the captured schema"
        in result.output.replace("\n", " ")
    )


def test_qprof_run_help_has_an_example():
    result = CliRunner().invoke(main, ["run", "--help"])
    assert result.exit_code == 0 and "Example:" in result.output


def test_the_package_level_trace_is_the_capture_s_own():
    import inspect

    from qprof import capture

    def shape(function):
        parameters = inspect.signature(function).parameters.values()
        return [(p.name, p.kind, p.default) for p in parameters]

    assert shape(qprof.trace) == shape(capture.trace)
    assert shape(qprof.context) == shape(capture.context)


_FORKING_SCRIPT = """
import multiprocessing, os, sqlite3, sys
import qprof

def work(number):
    db = sqlite3.connect(":memory:")
    db.execute("SELECT ? AS worker", (number,)).fetchall()
    db.close()
    return number

if __name__ == "__main__":
    with qprof.trace(sys.argv[1]):
        db = sqlite3.connect(":memory:")
        db.execute("SELECT 'before the fork'").fetchall()
        with multiprocessing.get_context("fork").Pool(2) as pool:
            assert pool.map(work, range(4)) == [0, 1, 2, 3]
            pool.close()
            pool.join()
        child = os.fork()
        if child == 0:
            db.execute("SELECT 'in the child'").fetchall()
            grandchild = os.fork()  # forked by a process that writes a part
            if grandchild == 0:
                db.execute("SELECT 'in the grandchild'").fetchall()
                sys.exit(0)
            os.waitpid(grandchild, 0)
            sys.exit(0)
        os.waitpid(child, 0)
        db.execute("SELECT 'after the fork'").fetchall()
"""


def test_forked_processes_trace_into_parts_merged_once(tmp_path):
    trace = tmp_path / "t.jsonl"
    done = run_script(tmp_path, _FORKING_SCRIPT)
    assert done.returncode == 0, done.stderr[-2000:]
    found = [r["sql"] for r in records(trace)]
    assert found.count("SELECT 'before the fork'") == 1  # not copied into a child
    assert found.count("SELECT ? AS worker") == 4
    assert found.count("SELECT 'in the child'") == 1
    assert found.count("SELECT 'in the grandchild'") == 1
    assert found.count("SELECT 'after the fork'") == 1
    assert list(tmp_path.glob("t.pid*.jsonl")) == []
    parts = [line for line in trace.read_text().splitlines() if "qprof_part" in line]
    assert len(parts) >= 2  # the pool's workers and the forked child


def test_a_part_merged_behind_a_cut_trace_keeps_its_own_shapes(tmp_path):
    trace, part = tmp_path / "t.jsonl", tmp_path / "t.gw0.jsonl"
    shape = '{"qprof_shape": {"id": 1, "sql": "SELECT %s"}}\n{"shape": 1}\n'
    trace.write_text('{"qprof_trace": 2}\n' + shape % "'main'" + '{"shape": 1, "ts"')
    part.write_text('{"qprof_trace": 2, "pid": 42}\n' + shape % "'part'")
    assert merge_parts(trace) == 1
    problems = ReadProblems()
    found = [(s.sql, s.line) for s, _record in read_records(trace, problems)]
    assert found == [("SELECT 'main'", 3), ("SELECT 'part'", 7)]
    assert [p.line for p in problems.problems] == [4]  # the cut line, alone
    assert json.loads(trace.read_text().splitlines()[4]) == {
        "qprof_part": {"process": "gw0", "pid": 42}
    }
    assert not part.exists()


def test_a_part_an_earlier_run_left_is_not_merged_into_the_next_trace(tmp_path, caplog):
    trace, stale = tmp_path / "t.jsonl", tmp_path / "t.pid4194999.jsonl"
    stale.write_text('{"qprof_trace": 2}\n{"sql": "SELECT \'old\'"}\n')
    with qprof.trace(trace):
        sqlite3.connect(":memory:").execute("SELECT 'new'").fetchall()
    assert [r["sql"] for r in records(trace)] == ["SELECT 'new'"]
    assert stale.exists()
    assert "left from an earlier trace" in caplog.text


def test_qprof_run_traces_the_python_processes_the_program_starts(tmp_path):
    program = tmp_path / "app.py"
    program.write_text(
        textwrap.dedent(
            """
            import multiprocessing, sqlite3, subprocess, sys

            def work(number):
                sqlite3.connect(":memory:").execute("SELECT ? + 0", (number,))

            if __name__ == "__main__":
                db = sqlite3.connect(":memory:")
                db.execute("SELECT 'parent'").fetchall()
                code = "import sqlite3; sqlite3.connect(':memory:').execute('SELECT 2')"
                subprocess.run([sys.executable, "-c", code], check=True)
                # spawn also starts a resource tracker, a Python process with no SQL
                with multiprocessing.get_context("spawn").Pool(1) as pool:
                    pool.map(work, [1, 2])
                db.execute("SELECT 'parent again'").fetchall()
            """
        )
    )
    out = tmp_path / "run.jsonl"
    result = CliRunner().invoke(
        main, ["run", "--out", str(out), "--", sys.executable, str(program)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(r["sql"] for r in records(out)) == [
        "SELECT 'parent again'",
        "SELECT 'parent'",
        "SELECT 2",
        "SELECT ? + 0",
        "SELECT ? + 0",
    ]
    assert "unmerged" not in result.output
    assert list(tmp_path.glob("run.pid*.jsonl")) == []


def test_qprof_run_reports_a_program_killed_by_a_signal_as_a_shell_does(tmp_path):
    program = tmp_path / "app.py"
    program.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n")
    result = CliRunner().invoke(
        main,
        ["run", "--out", str(tmp_path / "r.jsonl"), "--", sys.executable, str(program)],
    )
    assert result.exit_code == 128 + signal.SIGTERM
    assert "killed by SIGTERM" in result.output


@pytest.mark.parametrize("driver", ["sqlite3", "apsw"])
def test_executemany_of_a_generator_records_its_first_set_and_count(tmp_path, driver):
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace):
        if driver == "apsw":
            db = apsw.Connection(":memory:")
            db.execute("CREATE TABLE t (a, b)")
            db.cursor().executemany(
                "INSERT INTO t VALUES (?, ?)", ((i, str(i)) for i in range(7))
            )
        else:
            db = sqlite3.connect(":memory:")
            db.execute("CREATE TABLE t (a, b)")
            db.executemany(
                "INSERT INTO t VALUES (?, ?)", ((i, str(i)) for i in range(7))
            )
    insert = [r for r in records(trace) if r["sql"].startswith("INSERT")][0]
    assert insert["params"] == [0, "0"] and insert["executemany"] == 7
    assert insert["measured"]["rows_changed"] == 7


def test_analyze_names_an_empty_file_and_a_trace_without_statements(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    header = tmp_path / "header.jsonl"
    header.write_text('{"qprof_trace": 1}\n')
    for path, found in ((empty, "an empty file"), (header, "none in it")):
        result = CliRunner().invoke(main, ["analyze", str(path)])
        assert result.exit_code == 2, result.output
        assert f"{path}: expected" in result.output and found in result.output


def test_an_executemany_that_fails_part_way_counts_the_rows_it_changed(tmp_path):
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace):
        db = sqlite3.connect(":memory:")
        db.execute("CREATE TABLE t (a UNIQUE)")
        with pytest.raises(sqlite3.IntegrityError):
            db.executemany("INSERT INTO t VALUES (?)", [(1,), (2,), (1,)])
    failed = records(trace)[-1]
    assert failed["measured"]["rows_changed"] == 2  # the sets before the third
    assert failed["measured"]["error"].startswith("IntegrityError")


def test_an_executemany_of_no_sets_is_not_recorded(tmp_path):
    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace):
        db = sqlite3.connect(":memory:")
        db.execute("CREATE TABLE t (a, b)")
        db.executemany("INSERT INTO t VALUES (?, ?)", [])
        db.executemany("INSERT INTO t VALUES (?, ?)", (x for x in ()))
    assert [r["sql"] for r in records(trace)] == ["CREATE TABLE t (a, b)"]


def test_connections_and_attachments_carry_over_to_a_later_trace(tmp_path):
    db = apsw.Connection(":memory:")
    with qprof.trace(tmp_path / "first.jsonl"):
        plain = sqlite3.connect(":memory:")
        attach(db)
        attach(db)  # twice: no error, traced once
        db.execute("SELECT 1").fetchall()
    with qprof.trace(tmp_path / "second.jsonl"):
        attach(db)
        db.execute("SELECT 2").fetchall()
        plain.execute("SELECT 3").fetchall()
    assert [r["sql"] for r in records(tmp_path / "first.jsonl")] == ["SELECT 1"]
    assert [r["sql"] for r in records(tmp_path / "second.jsonl")] == [
        "SELECT 2",
        "SELECT 3",
    ]


def test_a_sigterm_to_qprof_run_reaches_the_program_which_cleans_up(tmp_path):
    program = tmp_path / "app.py"
    ready = tmp_path / "ready"
    program.write_text(
        textwrap.dedent(
            f"""
            import signal, sqlite3, sys, time, pathlib
            db = sqlite3.connect(":memory:")

            def stop(number, frame):
                db.execute("SELECT 'cleaning up'").fetchall()
                sys.exit(0)

            signal.signal(signal.SIGTERM, stop)
            db.execute("SELECT 'started'").fetchall()
            pathlib.Path({str(ready)!r}).touch()
            time.sleep(60)
            """
        )
    )
    out = tmp_path / "run.jsonl"
    runner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from qprof.cli import main; main()",
            "run",
            "--out",
            str(out),
            "--",
            sys.executable,
            str(program),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    runner.send_signal(signal.SIGTERM)
    stdout, stderr = runner.communicate(timeout=60)
    assert runner.returncode == 0, stderr
    assert [r["sql"] for r in records(out)] == [
        "SELECT 'started'",
        "SELECT 'cleaning up'",
    ]


_FORK_WHILE_THREADS_WRITE = """
import os, sqlite3, sys, threading
import qprof
from qprof.capture import recorder

recorder.FLUSH_EVERY = 50  # batches written all the time, forks cut into them
stop = False

def spin(number):
    db = sqlite3.connect(":memory:", check_same_thread=False)
    while not stop:
        db.execute("SELECT ?", (number,)).fetchall()

with qprof.trace(sys.argv[1]):
    threads = [threading.Thread(target=spin, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(40):
        child = os.fork()
        if child == 0:
            os._exit(0)  # no SQL, no clean exit: must neither hang nor leave a part
        os.waitpid(child, 0)
    stop = True
    for thread in threads:
        thread.join()
print("done")
"""


def test_forks_while_threads_write_the_trace_neither_hang_nor_lose_lines(tmp_path):
    trace = tmp_path / "t.jsonl"
    done = run_script(tmp_path, _FORK_WHILE_THREADS_WRITE, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr[-2000:]
    found = records(trace)  # no bad line
    closing = trace.read_text().splitlines()[-1]
    assert f'"statements": {len(found)},' in closing
    assert list(tmp_path.glob("t.pid*.jsonl")) == []
