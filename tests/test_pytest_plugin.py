"""The pytest plugin, through pytester: inert without --qprof, a summary with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .traces import trace_records

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "sample_workloads" / "app"


def test_is_inert_without_the_option(pytester):
    pytester.makepyfile(
        test_inert="""
        import sqlite3

        def test_nothing_is_patched(pytestconfig):
            assert pytestconfig.pluginmanager.get_plugin("qprof-capture") is None
            assert sqlite3.connect.__name__ == "connect"
            sqlite3.connect(":memory:").execute("SELECT 1")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "= qprof =" not in result.stdout.str()
    assert not (pytester.path / ".qprof").exists()


def test_summary_names_the_n_plus_one_its_test_and_caller_line(pytester):
    pytester.makepyfile(
        test_loop="""
        import sqlite3

        def test_loop():
            db = sqlite3.connect(":memory:")
            db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
            db.executemany("INSERT INTO users (name) VALUES (?)", [("a",)] * 9)
            for i in range(1, 9):
                db.execute("SELECT name FROM users WHERE id = ?", (i,)).fetchone()
        """
    )
    result = pytester.runpytest("--qprof=trace.jsonl")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*= qprof =*",
            "qprof: 10 statements (3 fingerprints) in 1 tests*trace: trace.jsonl",
            "*n_plus_one [[]*[]] users(id): SELECT name FROM users WHERE id = ?",
            "      8x at test_loop.py:8 in test_loop.py::test_loop",
        ]
    )
    assert (pytester.path / "trace.jsonl").exists()


def test_sample_app_suite_summary_names_tests_callers_and_unindexed_column(tmp_path):
    trace = tmp_path / "trace.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--qprof-top=20",
            f"--qprof={trace}",
            str(APP / "tests"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:]
    lines = (APP / "repository.py").read_text().splitlines()
    loop_line = 1 + next(
        n for n, text in enumerate(lines) if "owner = connection.execute(" in text
    )
    status_line = (
        1 + next(n for n, text in enumerate(lines) if "WHERE status = ?" in text) - 1
    )
    orm_lines = (APP / "orm.py").read_text().splitlines()
    orm_line = 1 + next(
        n for n, text in enumerate(orm_lines) if "project.owner.name" in text
    )
    assert "] users(id): SELECT name FROM users WHERE id = ?" in out
    assert (
        f"8x at sample_workloads/app/repository.py:{loop_line} in "
        "sample_workloads/app/tests/test_repository.py::test_list_projects_with_owners"
    ) in out
    assert (
        "  unindexed_filter [" in out
        and "] tasks(status): SELECT id, title FROM tasks" in out
    )
    assert f"at sample_workloads/app/repository.py:{status_line} in " in out
    assert (
        f"8x at sample_workloads/app/orm.py:{orm_line} in "
        "sample_workloads/app/tests/test_orm.py::test_project_owner_names"
    ) in out


GATED = """
import sqlite3

def users():
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    db.executemany("INSERT INTO users (name) VALUES (?)", [("a",)] * 9)
    return db

def test_loop():
    db = users()
    for i in range(1, 9):
        db.execute("SELECT name FROM users WHERE id = ?", (i,)).fetchone()

def test_batched():
    db = users()
    db.execute("SELECT name FROM users WHERE id IN (1, 2, 3, 4, 5, 6, 7, 8)").fetchall()
"""


def test_fail_on_fails_the_test_that_made_the_n_plus_one(pytester):
    pytester.makepyfile(test_gate=GATED)
    result = pytester.runpytest("--qprof=trace.jsonl", "--qprof-fail-on=n_plus_one")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_loop _*",
            "qprof: new n_plus_one in this test: Ran 8 times*",
            "    statement: SELECT name FROM users WHERE id = ?",
            "    caller: test_gate.py:12",
        ]
    )
    assert "test_batched FAILED" not in result.stdout.str()
    # The gate's own analysis (a replica, its plans) is not in the trace.
    statements = trace_records(pytester.path / "trace.jsonl")
    assert len(statements) == 2 * 2 + 8 + 1  # CREATE and executemany twice
    assert {s["caller"].split(":")[0] for s in statements} == {"test_gate.py"}


def test_fail_on_lets_findings_the_baseline_accepts_pass(pytester):
    pytester.makepyfile(test_gate=GATED)
    from qprof.fingerprint import fingerprint_sql

    loop = fingerprint_sql("SELECT name FROM users WHERE id = ?").id
    pytester.makefile(
        ".json",
        baseline=f'{{"qprof_baseline": 1, "accepted": [{{"kind": "n_plus_one", '
        f'"fingerprint": "{loop}"}}]}}',
    )
    result = pytester.runpytest(
        "--qprof=trace.jsonl",
        "--qprof-fail-on=n_plus_one",
        "--qprof-baseline=baseline.json",
    )
    result.assert_outcomes(passed=2)


def test_fail_on_rejects_an_unknown_kind(pytester):
    pytester.makepyfile(test_gate=GATED)
    result = pytester.runpytest("--qprof", "--qprof-fail-on=slow")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--qprof-fail-on: unknown kind slow*"])
    from qprof.capture import active_tracer

    assert active_tracer() is None  # refused before the capture started


def test_the_summary_child_answers_as_the_tests_process_would(tmp_path, monkeypatch):
    import sqlite3

    import qprof
    from qprof.capture.summary import SummaryWorker, summarize_trace

    monkeypatch.chdir(tmp_path)
    with qprof.trace("trace.jsonl", context="test_x"):
        db = sqlite3.connect(":memory:")
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        for i in range(8):
            db.execute("SELECT name FROM users WHERE id = ?", (i,)).fetchall()
    worker = SummaryWorker()
    lines = worker.summarize(Path("trace.jsonl"), 5, 5)
    assert lines == summarize_trace(Path("trace.jsonl"), 5, 5)
    assert lines[0].startswith("qprof: 9 statements (2 fingerprints) in 1 tests")
    assert lines[0].endswith("trace: trace.jsonl")
    assert worker.process.returncode == 0


def test_a_dead_summary_child_leaves_the_summary_to_the_tests_process(tmp_path):
    from qprof.capture.summary import SummaryWorker

    worker = SummaryWorker()
    worker.close()
    assert worker.process.returncode is not None
    assert worker.summarize(tmp_path / "trace.jsonl", 5, 5) is None


def test_a_failing_summary_does_not_change_the_tests_outcome(pytester):
    pytester.makeconftest(
        """
        import qprof.capture.summary as summary

        def broken(*args, **kwargs):
            raise RuntimeError("boom")

        summary.summarize_trace = broken
        summary.SummaryWorker.summarize = lambda self, *args: None
        """
    )
    pytester.makepyfile(test_ok="def test_ok():\n    assert True\n")
    result = pytester.runpytest_subprocess("--qprof=trace.jsonl")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "qprof: traced to trace.jsonl; the summary failed on an internal error "
            "(RuntimeError: boom); please report it"
        ]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_xdist_workers_traces_are_merged_into_one(pytester):
    pytest.importorskip("xdist")
    loop = """
import sqlite3

def test_{name}():
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE {name} (id INTEGER PRIMARY KEY, v TEXT)")
    for i in range(6):
        db.execute("SELECT v FROM {name} WHERE id = ?", (i,)).fetchall()
"""
    pytester.makepyfile(
        test_one=loop.format(name="one"), test_two=loop.format(name="two")
    )
    result = pytester.runpytest_subprocess("-n", "2", "--qprof=trace.jsonl")
    result.assert_outcomes(passed=2)
    lines = (pytester.path / "trace.jsonl").read_text().splitlines()
    parts = [json.loads(line)["qprof_part"] for line in lines if "qprof_part" in line]
    assert sorted(p["process"] for p in parts) == ["gw0", "gw1"]
    assert len({p["pid"] for p in parts}) == 2
    statements = trace_records(pytester.path / "trace.jsonl")
    assert sorted({s["context"] for s in statements}) == [
        "test_one.py::test_one",
        "test_two.py::test_two",
    ]
    assert len(statements) == 14
    assert list(pytester.path.glob("trace.gw*.jsonl")) == []
    result.stdout.fnmatch_lines(
        ["qprof: 14 statements (4 fingerprints) in 2 tests*trace: trace.jsonl"]
    )
    assert result.stdout.str().count("n_plus_one [") == 2


def test_naming_the_plugin_with_p_works_whether_or_not_it_autoloads(pytester):
    pytester.makepyfile(test_ok="def test_ok():\n    assert True\n")
    for autoload in ("", "1"):
        pytester._monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", autoload)
        result = pytester.runpytest_subprocess(
            "-p", "qprof.pytest_plugin", "--qprof=trace.jsonl"
        )
        assert result.ret == pytest.ExitCode.OK, result.stderr.str()
        result.stdout.fnmatch_lines(["qprof: 0 statements*trace: trace.jsonl"])


@pytest.mark.parametrize(
    "options, message",
    [
        (["--qprof", "--qprof-top=0"], "--qprof-top: give 1 or more"),
        (["--qprof", "--qprof-n-plus-one-min=1"], "--qprof-n-plus-one-min: give 2"),
        (["--qprof-fail-on=n_plus_one"], "need --qprof"),
        (["--qprof", "--qprof-baseline=b.json"], "give that too"),
    ],
)
def test_option_values_that_make_no_sense_are_refused(pytester, options, message):
    pytester.makepyfile(test_ok="def test_ok():\n    assert True\n")
    result = pytester.runpytest(*options)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
