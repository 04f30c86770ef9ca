"""Replay: measurements, read-only against snapshot, failures, plans."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import apsw
import pytest

from qprof.errors import DatabaseError
from qprof.replay import Replayer, replay_workload
from qprof.trace import Statement

from .conftest import ROWS, file_digest


def run(replayer: Replayer, sql: str, params=None):
    return replayer.measure(Statement(sql, params, "test", 1))


def snapshot_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("qprof-snapshot-*"))


def test_full_scan_steps_every_row(items_db):
    with Replayer(items_db) as replayer:
        m = run(replayer, "SELECT * FROM items WHERE category = ?", (3,))
    # FULLSCAN_STEP counts the steps from one row to the next: N rows, N - 1 steps.
    assert m.fullscan_step == ROWS - 1
    assert m.rows_returned == ROWS // 20
    assert m.vm_step > ROWS
    assert [str(line) for line in m.plan] == ["SCAN items"]
    assert m.elapsed_ns > 0


def test_indexed_point_query_does_not_scan(items_db):
    with Replayer(items_db) as replayer:
        m = run(replayer, "SELECT * FROM items WHERE sku = ?", ("sku-77",))
    assert m.fullscan_step == 0
    assert m.rows_returned == 1
    assert m.vm_step < 50
    assert [str(line) for line in m.plan] == [
        "SEARCH items USING INDEX items_sku (sku=?)"
    ]


def test_counts_sorts_and_automatic_indexes(items_db):
    with Replayer(items_db) as replayer:
        sorted_ = run(replayer, "SELECT * FROM items ORDER BY price DESC LIMIT 5")
        joined = run(
            replayer,
            "SELECT count(*) FROM items a JOIN items b ON b.category = a.category WHERE a.id < 10",
        )
    assert sorted_.sort == 1 and sorted_.rows_returned == 5
    assert joined.autoindex > 0
    assert any("AUTOMATIC" in line.detail for line in joined.plan)


def test_read_only_workload_runs_on_the_original_read_only(items_db, write_file):
    before = file_digest(items_db)
    workload = write_file(
        "w.sql", "SELECT count(*) FROM items;\nSELECT * FROM items WHERE id = 5;\n"
    )
    profile = replay_workload(workload, items_db)
    assert profile.mode == "read-only"
    assert profile.statements == 2 and profile.error_count == 0
    assert file_digest(items_db) == before


def test_writing_workload_runs_on_a_snapshot_that_is_removed(items_db, write_file):
    before = file_digest(items_db)
    dirs_before = snapshot_dirs()
    workload = write_file(
        "w.sql",
        "SELECT count(*) FROM items;\n"
        "BEGIN;\n"
        "INSERT INTO items (sku, category, price) VALUES ('new', 1, 1.0);\n"
        "DELETE FROM items WHERE category = 2;\n"
        "COMMIT;\n"
        "SELECT count(*) FROM items;\n",
    )
    profile = replay_workload(workload, items_db)
    assert profile.mode == "snapshot"
    assert profile.error_count == 0, profile.errors
    counts = [
        fp for fp in profile.fingerprints.values() if fp.sample_sql.startswith("SELECT")
    ]
    assert (
        counts[0].rows_returned == 2
    )  # the count ran twice, once on each side of the writes
    delete = next(
        fp for fp in profile.fingerprints.values() if fp.sample_sql.startswith("DELETE")
    )
    assert delete.rows_changed == ROWS // 20
    assert file_digest(items_db) == before
    assert snapshot_dirs() == dirs_before


def test_snapshot_sees_what_the_workload_wrote(items_db):
    with Replayer(items_db) as replayer:
        run(replayer, "INSERT INTO items (sku) VALUES ('x')")
        m = run(replayer, "SELECT count(*) FROM items WHERE sku = 'x'")
        assert replayer.mode == "snapshot"
        snapshot = replayer.snapshot_dir
        assert snapshot is not None and snapshot.exists()
    assert m.error is None and m.rows_returned == 1
    assert not snapshot.exists()


def test_snapshot_is_removed_when_replay_is_interrupted(items_db):
    def statements():
        yield Statement("UPDATE items SET price = 0 WHERE id = 1", None, "w", 1)
        raise KeyboardInterrupt

    dirs_before = snapshot_dirs()
    with pytest.raises(KeyboardInterrupt):
        with Replayer(items_db) as replayer:
            for statement in statements():
                replayer.measure(statement)
    assert replayer.mode == "snapshot"
    assert snapshot_dirs() == dirs_before


def test_failed_statements_are_recorded_and_replay_goes_on(items_db, write_file):
    workload = write_file(
        "w.sql", "SELECT * FROM missing;\nSELEC 1;\nSELECT count(*) FROM items;\n"
    )
    profile = replay_workload(workload, items_db)
    assert profile.statements == 3 and profile.error_count == 2
    assert [(e.location.rsplit(":", 1)[1], e.error) for e in profile.errors] == [
        ("1", "SQLError: no such table: missing"),
        ("2", 'SQLError: near "SELEC": syntax error'),
    ]


def test_read_only_original_refuses_writes_it_was_not_told_about(items_db):
    # A write the classifier cannot see (here: inside a CTE the first word hides)
    # still cannot touch the original, which is opened read-only.
    before = file_digest(items_db)
    with Replayer(items_db) as replayer:
        m = run(replayer, "WITH x AS (SELECT 1) DELETE FROM items")
    assert replayer.mode == "snapshot" and m.error is None
    assert file_digest(items_db) == before


def test_repeat_reruns_reads_but_counts_once(items_db):
    with Replayer(items_db, repeat=5) as replayer:
        m = run(replayer, "SELECT * FROM items WHERE category = ?", (1,))
    assert m.rows_returned == ROWS // 20
    assert m.fullscan_step == ROWS - 1


def test_flags_plans_that_differ_between_values(tmp_path):
    path = tmp_path / "ev.db"
    db = apsw.Connection(str(path))
    db.execute(
        """
        CREATE TABLE ev (id INTEGER PRIMARY KEY, kind TEXT, user INTEGER);
        CREATE INDEX ev_kind ON ev(kind);
        CREATE INDEX ev_user ON ev(user);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
        INSERT INTO ev SELECT i, CASE WHEN i % 1000 = 0 THEN 'rare' ELSE 'common' END, i % 50
        FROM n;
        ANALYZE;
        """
    )
    db.close()
    lines = [
        json.dumps(
            {"sql": "SELECT * FROM ev WHERE kind = ? AND user = ?", "params": [k, 3]}
        )
        for k in ("rare", "common")
    ]
    workload = tmp_path / "w.jsonl"
    workload.write_text("\n".join(lines) + "\n")
    profile = replay_workload(workload, path)
    (fp,) = profile.fingerprints.values()
    assert fp.plan_varies
    assert [[str(line) for line in v.plan] for v in fp.plans] == [
        ["SEARCH ev USING INDEX ev_kind (kind=?)"],
        ["SEARCH ev USING INDEX ev_user (user=?)"],
    ]
    assert [v.params for v in fp.plans] == [("rare", 3), ("common", 3)]


def test_groups_by_fingerprint_with_percentiles(items_db, write_file):
    sql = "".join(f"SELECT * FROM items WHERE id = {i};\n" for i in range(1, 21))
    profile = replay_workload(write_file("w.sql", sql), items_db)
    (fp,) = profile.fingerprints.values()
    assert fp.count == 20 and fp.rows_returned == 20
    assert fp.fingerprint.text == "SELECT * FROM items WHERE id = ?"
    ordered = sorted(fp.times_ns)
    assert fp.percentile_ns(50) == ordered[9]
    assert fp.percentile_ns(95) == ordered[18]
    assert fp.total_ns == sum(ordered)


def test_missing_and_non_sqlite_databases_are_database_errors(tmp_path, write_file):
    workload = write_file("w.sql", "SELECT 1;\n")
    with pytest.raises(DatabaseError) as missing:
        replay_workload(workload, tmp_path / "nope.db")
    assert missing.value.reason == "no such database file"
    not_db = write_file("text.db", "this is not a database, just text\n" * 50)
    with pytest.raises(DatabaseError) as wrong:
        replay_workload(workload, not_db)
    assert wrong.value.reason.startswith("not a SQLite database")
    assert not (tmp_path / "nope.db").exists()


def test_repeat_skips_transaction_statements(items_db, write_file):
    workload = write_file(
        "w.sql",
        "BEGIN;\nSELECT count(*) FROM items;\nUPDATE items SET price = 2 WHERE id = 1;\nCOMMIT;\n",
    )
    profile = replay_workload(workload, items_db, repeat=3)
    assert profile.error_count == 0, profile.errors
    assert profile.statements == 4


def test_attach_after_the_first_write_is_refused(items_db, write_file, tmp_path):
    before = file_digest(items_db)
    other = tmp_path / "other.db"
    workload = write_file(
        "w.sql",
        "UPDATE items SET price = 0 WHERE id = 1;\n"
        f"ATTACH '{items_db}' AS orig;\n"
        f"VACUUM INTO '{other}';\n",
    )
    profile = replay_workload(workload, items_db)
    assert [e.error for e in profile.errors] == [
        "SQLError: too many attached databases - max 0",
        "SQLError: too many attached databases - max 0",
    ]
    assert file_digest(items_db) == before and not other.exists()


def test_settings_made_before_the_first_write_carry_over_to_the_snapshot(tmp_path):
    path = tmp_path / "fk.db"
    db = apsw.Connection(str(path))
    db.execute(
        "CREATE TABLE p (id INTEGER PRIMARY KEY);"
        "CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INTEGER REFERENCES p(id));"
        "INSERT INTO p VALUES (1); INSERT INTO c VALUES (1, 1);"
    )
    db.close()
    workload = tmp_path / "w.sql"
    workload.write_text("PRAGMA foreign_keys = ON;\nDELETE FROM p WHERE id = 1;\n")
    profile = replay_workload(workload, path)
    assert [e.error for e in profile.errors] == [
        "ConstraintError: FOREIGN KEY constraint failed"
    ]


def test_a_statement_that_does_not_prepare_does_not_make_a_snapshot(
    items_db, write_file
):
    profile = replay_workload(
        write_file("w.sql", "SELEC 1;\nSELECT * FROM nope;\n"), items_db
    )
    assert profile.mode == "read-only" and profile.error_count == 2


def test_bad_bindings_are_statement_errors_not_crashes(items_db, write_file):
    lines = [
        '{"sql": "SELECT :a", "params": {"b": 1}}',
        '{"sql": "SELECT ?", "params": [123456789012345678901234567890]}',
        '{"sql": "SELECT 1"}',
    ]
    profile = replay_workload(write_file("t.jsonl", "\n".join(lines) + "\n"), items_db)
    assert profile.statements == 3
    assert [e.error.split(":")[0] for e in profile.errors] == [
        "KeyError",
        "OverflowError",
    ]
