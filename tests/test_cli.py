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
    assert records[0]["qprof_trace"] == 2
    assert [r["measured"]["rows_returned"] for r in records[1:]] == [1, 0]
    assert [r["measured"]["rows_changed"] for r in records[1:]] == [0, 1]
    again = invoke("replay", str(out), "--db", str(items_db), "--json")
    ids = lambda doc: sorted(fp["fingerprint"] for fp in doc["fingerprints"])  # noqa: E731
    assert ids(json.loads(again.stdout)) == ids(json.loads(first.stdout))
    assert file_digest(items_db) == before


def test_a_replay_out_trace_without_its_database_is_refused_for_want_of_a_schema(
    items_db, write_file, tmp_path
):
    workload = write_file("w.sql", "SELECT * FROM items WHERE id = 3;\n")
    out = tmp_path / "measured.jsonl"
    replayed = invoke("replay", str(workload), "--db", str(items_db), "--out", str(out))
    assert replayed.exit_code == 0
    result = invoke("analyze", str(out))
    assert result.exit_code == 2
    assert "holds no schema" in result.output and "--db" in result.output


def test_a_capture_that_sent_nothing_to_sqlite_checks_clean(tmp_path):
    import qprof

    trace = tmp_path / "t.jsonl"
    with qprof.trace(trace):
        pass
    checked = invoke("check", str(trace))
    assert checked.exit_code == 0, checked.output
    assert "0 new findings" in checked.output
    analyzed = invoke("analyze", str(trace), "--json")
    assert json.loads(analyzed.stdout)["workload"]["statements"] == 0


def test_format_override_and_unknown_format(items_db, write_file):
    workload = write_file("w.txt", "SELECT 1;\n")
    forced = invoke("replay", str(workload), "--db", str(items_db), "--format", "qprof")
    assert forced.exit_code == 0
    assert "1 skipped line." in forced.stdout
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


FINDING_KEYS = {
    "kind",
    "severity",
    "fingerprint",
    "fingerprints",
    "sql",
    "table",
    "columns",
    "message",
    "advice",
    "cost_share",
    "evidence",
}


def test_replay_reports_findings_and_analyze_reads_the_measured_trace(
    items_db, write_file, tmp_path
):
    lines = "".join(f"SELECT * FROM items WHERE category = {i};\n" for i in range(6))
    workload = write_file("w.sql", lines)
    out = tmp_path / "measured.jsonl"
    replayed = invoke(
        "replay", str(workload), "--db", str(items_db), "--json", "--out", str(out)
    )
    doc = json.loads(replayed.stdout)
    kinds = {f["kind"] for f in doc["findings"]}
    assert {"full_scan", "unindexed_filter", "n_plus_one"} <= kinds
    for finding in doc["findings"]:
        assert FINDING_KEYS <= finding.keys()
    loop = next(f for f in doc["findings"] if f["kind"] == "n_plus_one")
    assert (loop["table"], loop["columns"]) == ("items", ["category"])
    assert loop["evidence"]["statements_in_loops"] == 6
    assert doc["analysis"] == {
        "ran": True,
        "fingerprints": 1,
        "unparsed": 0,
        "failed_detectors": {},
    }

    analyzed = invoke("analyze", str(out), "--db", str(items_db), "--json")
    assert analyzed.exit_code == 0, analyzed.output
    again = json.loads(analyzed.stdout)
    assert again["replay"]["mode"] == "trace"
    assert again["workload"]["statements"] == 6
    assert again["fingerprints"][0]["total_ns"] == doc["fingerprints"][0]["total_ns"]
    assert {f["kind"] for f in again["findings"]} == kinds

    text = invoke("replay", str(workload), "--db", str(items_db))
    assert "unindexed_filter [high] items(category)" in text.stdout
    assert "n_plus_one" in text.stdout


def test_no_analyze_skips_findings_and_thresholds_are_options(items_db, write_file):
    lines = "".join(f"SELECT * FROM items WHERE category = {i};\n" for i in range(3))
    workload = write_file("w.sql", lines)
    quick = json.loads(
        invoke(
            "replay", str(workload), "--db", str(items_db), "--json", "--no-analyze"
        ).stdout
    )
    assert quick["findings"] == [] and quick["analysis"]["ran"] is False
    loose = invoke(
        "replay",
        str(workload),
        "--db",
        str(items_db),
        "--json",
        "--n-plus-one-min",
        "3",
        "--scan-min-rows",
        "5000",
    )
    kinds = [f["kind"] for f in json.loads(loose.stdout)["findings"]]
    assert "n_plus_one" in kinds and "full_scan" not in kinds


def test_out_refuses_a_hard_link_to_the_database(items_db, write_file, tmp_path):
    link = tmp_path / "link.db"
    link.hardlink_to(items_db)
    before = file_digest(items_db)
    workload = write_file("w.sql", "SELECT 1;\n")
    result = invoke("replay", str(workload), "--db", str(items_db), "--out", str(link))
    assert (
        result.exit_code == 2
        and "must not be the workload or the database" in result.stderr
    )
    assert file_digest(items_db) == before


def test_out_is_not_touched_when_the_database_is_wrong(write_file, tmp_path):
    keep = write_file("precious.jsonl", "keep me\n")
    workload = write_file("w.sql", "SELECT 1;\n")
    result = invoke(
        "replay", str(workload), "--db", str(tmp_path / "typo.db"), "--out", str(keep)
    )
    assert result.exit_code == 2
    assert keep.read_text() == "keep me\n"


def test_text_report_fits_a_narrow_terminal(items_db, write_file):
    from qprof.replay import replay_workload
    from qprof.report.text import render_text

    workload = write_file(
        "w.sql", "SELECT * FROM items WHERE category = 1 ORDER BY price;\n"
    )
    profile = replay_workload(workload, items_db)
    for width in (60, 80):
        text = render_text(profile, width=width)
        assert max(len(line) for line in text.splitlines()) <= width


def test_recommend_command_lists_measured_indexes_and_writes_a_migration(
    items_db, write_file, tmp_path
):
    lines = "".join(
        f"SELECT * FROM items WHERE category = {i} AND price > 10;\n" for i in range(5)
    )
    workload = write_file("w.sql", lines)
    out = tmp_path / "measured.jsonl"
    invoke(
        "replay",
        str(workload),
        "--db",
        str(items_db),
        "--out",
        str(out),
        "--no-recommend",
    )
    migrations = tmp_path / "migrations"
    result = invoke(
        "recommend",
        str(out),
        "--db",
        str(items_db),
        "--json",
        "--migration",
        str(migrations),
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    (pick,) = doc["recommendations"]
    assert (pick["table"], pick["columns"][:2]) == ("items", ["category", "price"])
    assert pick["ddl"].startswith("CREATE INDEX idx_items_category_price")
    assert pick["saving"]["vm_steps"] > 0 and pick["size_bytes"] > 0
    assert pick["fingerprints"][0]["plan_before"] == ["SCAN items"]
    assert doc["recommender"]["ran"] is True
    (folder,) = migrations.iterdir()
    assert pick["ddl"] in (folder / "up.sql").read_text()
    assert f"Wrote {folder / 'up.sql'}" in result.stderr

    quick = json.loads(
        invoke(
            "replay", str(workload), "--db", str(items_db), "--json", "--no-recommend"
        ).stdout
    )
    assert quick["recommendations"] == [] and quick["recommender"] == {"ran": False}
