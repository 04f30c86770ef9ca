"""The command line: JSON keys, exit codes and messages, --out, help."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from qprof.cli import main

from .conftest import ROWS, file_digest

README = Path(__file__).resolve().parent.parent / "README.md"


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_json_carries_the_stable_keys_with_measured_values(items_db, write_file):
    workload = write_file(
        "w.sql",
        "SELECT * FROM items WHERE category = 4;\n"
        "SELECT * FROM items WHERE category = 5;\n"
        "SELECT * FROM items WHERE sku = 'sku-9';\n",
    )
    result = invoke("replay", str(workload), "--db", str(items_db), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert {"workload", "fingerprints", "findings", "recommendations"} <= doc.keys()
    assert (doc["workload"]["statements"], doc["workload"]["fingerprints"]) == (3, 2)
    assert doc["workload"]["errors"] == 0
    scan, point = doc["fingerprints"]
    assert scan["sql"] == "SELECT * FROM items WHERE category = ?"
    assert scan["count"] == 2 and scan["fullscan_steps"] == 2 * (ROWS - 1)
    assert scan["plan"] == ["SCAN items"]
    assert point["plan"] == ["SEARCH items USING INDEX items_sku (sku=?)"]
    for fp in doc["fingerprints"]:
        assert {
            "fingerprint",
            "sql",
            "count",
            "total_ns",
            "vm_steps",
            "plan",
        } <= fp.keys()
        assert fp["total_ns"] > 0 and fp["vm_steps"] > 0
    assert doc["replay"]["mode"] == "read-only"


def test_text_report_lists_costliest_first(items_db, write_file):
    workload = write_file(
        "w.sql",
        "SELECT * FROM items WHERE id = 1;\nSELECT * FROM items ORDER BY price;\n",
    )
    result = invoke("replay", str(workload), "--db", str(items_db))
    assert result.exit_code == 0
    assert "Replayed 2 statements (2 fingerprints)" in result.stdout
    assert "on the original, opened read-only" in result.stdout
    first = result.stdout.index("SELECT * FROM items ORDER BY price")
    assert first < result.stdout.index("SELECT * FROM items WHERE id = ?")
    assert "plan: SCAN items | USE TEMP B-TREE FOR ORDER BY" in result.stdout


def test_missing_workload_is_one_line_and_exit_2(items_db, tmp_path):
    result = invoke("replay", str(tmp_path / "none.sql"), "--db", str(items_db))
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"Error: {tmp_path / 'none.sql'}: expected a workload file, found no such file\n"
    )


def test_non_sqlite_database_is_one_line_and_exit_2(write_file):
    workload = write_file("w.sql", "SELECT 1;\n")
    not_db = write_file("notes.db", "plain text, not SQLite\n" * 100)
    result = invoke("replay", str(workload), "--db", str(not_db))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {not_db}: not a SQLite database")
    assert "Traceback" not in result.output


def test_bad_line_is_skipped_and_counted_or_fatal_under_strict(items_db, write_file):
    workload = write_file(
        "t.jsonl",
        '{"sql": "SELECT 1"}\n{"sql": "SELECT 2", oops}\n{"sql": "SELECT 3"}\n',
    )
    skipped = invoke("replay", str(workload), "--db", str(items_db), "--json")
    assert skipped.exit_code == 0
    doc = json.loads(skipped.stdout)
    assert doc["workload"]["statements"] == 2 and doc["workload"]["skipped_lines"] == 1
    assert f"{workload}:2: expected a JSON object" in skipped.stderr

    strict = invoke("replay", str(workload), "--db", str(items_db), "--strict")
    assert strict.exit_code == 2
    assert strict.stderr.startswith(f"Error: {workload}:2: expected a JSON object")
    assert strict.stdout == ""


def test_out_writes_a_trace_that_replays_to_the_same_fingerprints(
    items_db, write_file, tmp_path
):
    workload = write_file(
        "w.sql",
        "SELECT * FROM items WHERE id = 3;\nUPDATE items SET price = 1 WHERE id = 3;\n",
    )
    before = file_digest(items_db)
    out = tmp_path / "measured.jsonl"
    first = invoke(
        "replay", str(workload), "--db", str(items_db), "--out", str(out), "--json"
    )
    assert first.exit_code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[0]["qprof_trace"] == 1
    assert [r["measured"]["rows_returned"] for r in records[1:]] == [1, 0]
    assert [r["measured"]["rows_changed"] for r in records[1:]] == [0, 1]
    again = invoke("replay", str(out), "--db", str(items_db), "--json")
    ids = lambda doc: sorted(fp["fingerprint"] for fp in doc["fingerprints"])  # noqa: E731
    assert ids(json.loads(again.stdout)) == ids(json.loads(first.stdout))
    assert file_digest(items_db) == before


def test_format_override_and_unknown_format(items_db, write_file):
    workload = write_file("w.txt", "SELECT 1;\n")
    forced = invoke("replay", str(workload), "--db", str(items_db), "--format", "qprof")
    assert forced.exit_code == 0
    assert "1 skipped lines" in forced.stdout
    bad = invoke("replay", str(workload), "--db", str(items_db), "--format", "xml")
    assert bad.exit_code == 2 and "Invalid value for '--format'" in bad.stderr


def test_every_command_has_help_and_is_in_the_readme():
    readme = README.read_text(encoding="utf-8")
    for name, command in main.commands.items():
        assert command.help and command.help.strip(), name
        result = invoke(name, "--help")
        assert result.exit_code == 0 and "Example:" in result.stdout
        assert re.search(rf"qprof {name}\b", readme), (
            f"README does not show qprof {name}"
        )
