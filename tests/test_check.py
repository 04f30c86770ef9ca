"""qprof check: clean passes, new problems fail, accepted ones pass, bad baselines exit 2."""

from __future__ import annotations

import json

from click.testing import CliRunner

from qprof.cli import main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def trace(write_file, name: str, records: list[dict]):
    return write_file(name, "".join(json.dumps(r) + "\n" for r in records))


def loop(user_ids, caller="app/views.py:42", context="test_list"):
    return [
        {
            "sql": "SELECT * FROM items WHERE category = ?",
            "params": [i],
            "caller": caller,
            "context": context,
        }
        for i in user_ids
    ]


def test_a_clean_trace_passes(items_db, write_file):
    clean = trace(
        write_file, "t.jsonl", [{"sql": "SELECT * FROM items WHERE sku = 'sku-1'"}]
    )
    result = invoke("check", str(clean), "--db", str(items_db))
    assert result.exit_code == 0, result.output
    assert "qprof check passed: 0 new findings" in result.stdout


def test_a_new_n_plus_one_fails_with_the_loop_named(items_db, write_file):
    looping = trace(write_file, "t.jsonl", loop(range(6)))
    result = invoke(
        "check", str(looping), "--db", str(items_db), "--fail-on", "n_plus_one"
    )
    assert result.exit_code == 1
    assert "NEW n_plus_one items(category): Ran 6 times" in result.stdout
    assert "caller: app/views.py:42" in result.stdout


def test_an_accepted_finding_passes_and_a_changed_literal_still_matches(
    items_db, write_file, tmp_path
):
    baseline = tmp_path / "baseline.json"
    first = trace(write_file, "a.jsonl", loop(range(6)))
    wrote = invoke(
        "check", str(first), "--db", str(items_db), "--write-baseline", str(baseline)
    )
    assert wrote.exit_code == 0
    document = json.loads(baseline.read_text())
    assert document["qprof_baseline"] == 1
    assert {e["kind"] for e in document["accepted"]} == {
        "n_plus_one",
        "full_scan",
        "unindexed_filter",
    }
    # The same loop over other values, sent from a moved line of code.
    moved = trace(write_file, "b.jsonl", loop(range(10, 17), caller="app/views.py:57"))
    result = invoke(
        "check", str(moved), "--db", str(items_db), "--baseline", str(baseline)
    )
    assert result.exit_code == 0, result.stdout
    assert "3 accepted by the baseline" in result.stdout


def test_a_bad_baseline_is_a_clear_error_and_exit_2(items_db, write_file):
    looping = trace(write_file, "t.jsonl", loop(range(6)))
    broken = write_file(
        "baseline.json", '{"qprof_baseline": 1, "accepted": [\n  {"kind": }\n]}\n'
    )
    result = invoke(
        "check", str(looping), "--db", str(items_db), "--baseline", str(broken)
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"Error: {broken}:2: expected a qprof baseline (JSON)"
    )
    other = write_file("other.json", '{"something": "else"}\n')
    result = invoke(
        "check", str(looping), "--db", str(items_db), "--baseline", str(other)
    )
    assert result.exit_code == 2 and '"qprof_baseline": 1' in result.stderr


def test_github_format_points_at_the_caller(items_db, write_file):
    looping = trace(write_file, "t.jsonl", loop(range(6)))
    result = invoke(
        "check",
        str(looping),
        "--db",
        str(items_db),
        "--format",
        "github",
        "--fail-on",
        "n_plus_one",
    )
    assert result.exit_code == 1
    (line,) = result.stdout.splitlines()
    assert line.startswith(
        "::error file=app/views.py,line=42,title=qprof n_plus_one on items::"
    )


def test_statement_budget_per_test(items_db, write_file):
    records = loop(range(3), context="tests/test_a.py::test_small")
    records += loop(range(9), context="tests/test_b.py::test_big")
    budget = trace(write_file, "t.jsonl", records)
    result = invoke(
        "check",
        str(budget),
        "--db",
        str(items_db),
        "--fail-on",
        "temp_btree",
        "--max-statements-per-test",
        "5",
        "--format",
        "json",
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout)["over_budget"] == [
        {"context": "tests/test_b.py::test_big", "statements": 9, "limit": 5}
    ]


def test_unknown_kind_is_a_usage_error(items_db, write_file):
    clean = trace(write_file, "t.jsonl", [{"sql": "SELECT 1"}])
    result = invoke(
        "check", str(clean), "--db", str(items_db), "--fail-on", "slow_stuff"
    )
    assert result.exit_code == 2 and "unknown kind slow_stuff" in result.stderr


def test_a_loop_of_writes_is_not_an_n_plus_one(items_db, write_file):
    inserts = [
        {
            "sql": "INSERT INTO items (sku, category) VALUES (?, ?)",
            "params": [f"n{i}", i],
        }
        for i in range(8)
    ]
    result = invoke(
        "check",
        str(trace(write_file, "t.jsonl", inserts)),
        "--db",
        str(items_db),
        "--fail-on",
        "n_plus_one",
    )
    assert result.exit_code == 0, result.stdout
