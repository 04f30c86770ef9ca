"""Each detector on small databases: what it flags, and what it leaves alone."""

from __future__ import annotations

import json
from pathlib import Path

import apsw
import pytest

from qprof.analyze import Thresholds, analyze_profile
from qprof.replay import replay_workload

from .conftest import build_events_db

SHOP = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, country TEXT);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    user_id INTEGER REFERENCES users(id),
    status TEXT,
    total REAL,
    created_at TEXT
);
CREATE TABLE tiny (id INTEGER PRIMARY KEY, name TEXT);
CREATE INDEX users_email ON users(email);
CREATE INDEX orders_status_total ON orders(status, total);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
INSERT INTO users SELECT i, 'user' || i || '@example.com', 'c' || (i % 30) FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
INSERT INTO orders SELECT i, 1 + i % 3000, CASE i % 4 WHEN 0 THEN 'new' ELSE 'paid' END,
    i % 500, printf('2024-%02d-%02d', 1 + i % 12, 1 + i % 28) FROM n;
INSERT INTO tiny VALUES (1, 'a'), (2, 'b'), (3, 'c');
"""


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("shop") / "shop.db"
    db = apsw.Connection(str(path))
    db.execute(SHOP)
    db.close()
    return path


def analyze(database: Path, tmp_path: Path, *lines, thresholds=None, name="w.sql"):
    """Replay ``lines`` (SQL text, or dicts for a qprof trace) and analyze them."""
    workload = tmp_path / name
    if lines and isinstance(lines[0], dict):
        workload.write_text("".join(json.dumps(line) + "\n" for line in lines))
    else:
        workload.write_text("".join(line + "\n" for line in lines))
    profile = replay_workload(workload, database)
    assert profile.error_count == 0, profile.errors
    return analyze_profile(profile, database, thresholds)


def of_kind(analysis, kind):
    return [f for f in analysis.findings if f.kind == kind]


def test_flags_full_scan_of_a_large_table_but_not_of_a_tiny_one(shop_db, tmp_path):
    analysis = analyze(
        shop_db,
        tmp_path,
        "SELECT * FROM orders WHERE created_at = '2024-03-04';",
        "SELECT * FROM tiny WHERE name = 'b';",
    )
    scans = of_kind(analysis, "full_scan")
    assert [(f.table, f.evidence["table_rows"]) for f in scans] == [("orders", 20000)]
    assert scans[0].evidence["rows_stepped_per_run"] == 19999
    assert scans[0].severity == "high"


def test_a_scan_the_query_needs_ranks_low(shop_db, tmp_path):
    analysis = analyze(shop_db, tmp_path, "SELECT count(*), sum(total) FROM orders;")
    (scan,) = of_kind(analysis, "full_scan")
    assert scan.severity == "low" and scan.evidence["needed_by_query"] is True


def test_a_scan_that_stops_at_its_limit_is_not_a_full_scan(shop_db, tmp_path):
    analysis = analyze(
        shop_db,
        tmp_path,
        "SELECT * FROM orders ORDER BY id LIMIT 101;",  # rowid order: 101 rows read
        "SELECT * FROM (SELECT id, status FROM orders) LIMIT 0;",
        "SELECT * FROM users ORDER BY country LIMIT 5;",  # sorts all 3,000 first
        "SELECT count(*) FROM orders LIMIT 1;",
        "SELECT * FROM (VALUES (1), (2), (3)) JOIN tiny ON tiny.id = column1;",
    )
    scans = {(f.table, f.sql) for f in of_kind(analysis, "full_scan")}
    assert scans == {
        ("users", "SELECT * FROM users ORDER BY country LIMIT 5;"),
        ("orders", "SELECT count(*) FROM orders LIMIT 1;"),
    }


def test_flags_unindexed_filter_resolving_alias_and_unqualified_names(
    shop_db, tmp_path
):
    analysis = analyze(
        shop_db,
        tmp_path,
        "SELECT o.id FROM orders o JOIN users u ON u.id = o.user_id WHERE created_at > '2024-06';",
    )
    (finding,) = of_kind(analysis, "unindexed_filter")
    assert (finding.table, finding.columns) == ("orders", ("created_at",))


def test_an_indexed_filter_is_not_flagged(shop_db, tmp_path):
    analysis = analyze(
        shop_db,
        tmp_path,
        "SELECT * FROM users WHERE email = 'user7@example.com';",
        "SELECT * FROM orders WHERE status = 'new' AND total > 400;",
        "SELECT * FROM orders WHERE id = 5;",
    )
    assert of_kind(analysis, "unindexed_filter") == []
    assert of_kind(analysis, "full_scan") == []


def test_a_filter_on_the_second_column_of_an_index_is_unindexed(shop_db, tmp_path):
    analysis = analyze(shop_db, tmp_path, "SELECT * FROM orders WHERE total = 5;")
    (finding,) = of_kind(analysis, "unindexed_filter")
    assert finding.columns == ("total",)


def test_flags_n_plus_one_and_shows_the_values_came_from_the_parent(shop_db, tmp_path):
    parent = {"sql": "SELECT id FROM users WHERE country = ? LIMIT 6", "params": ["c7"]}
    ids = [7, 37, 67, 97, 127, 157]
    children = [
        {
            "sql": "SELECT * FROM orders WHERE user_id = ?",
            "params": [i],
            "caller": "app.py:42",
        }
        for i in ids
    ]
    analysis = analyze(shop_db, tmp_path, parent, *children, name="t.jsonl")
    (loop,) = of_kind(analysis, "n_plus_one")
    assert (loop.table, loop.columns) == ("orders", ("user_id",))
    assert loop.evidence["statements_in_loops"] == 6
    assert loop.evidence["parent_sql"] == parent["sql"]
    assert loop.evidence["values_found_in_parent_rows"] == {"checked": 6, "found": 6}
    assert loop.evidence["callers"] == ["app.py:42"]
    assert "user_id IN (...)" in loop.advice


def test_a_setting_between_parent_and_loop_is_not_taken_for_the_parent(
    shop_db, tmp_path
):
    parent = {"sql": "SELECT id FROM users WHERE country = ? LIMIT 6", "params": ["c7"]}
    setting = {"sql": "PRAGMA recursive_triggers = on"}
    children = [
        {"sql": "SELECT * FROM orders WHERE user_id = ?", "params": [i]}
        for i in (7, 37, 67, 97, 127, 157)
    ]
    analysis = analyze(shop_db, tmp_path, parent, setting, *children, name="t.jsonl")
    (loop,) = of_kind(analysis, "n_plus_one")
    assert loop.evidence["parent_sql"] == parent["sql"]
    assert loop.evidence["values_found_in_parent_rows"] == {"checked": 6, "found": 6}


def test_a_loop_of_three_is_not_an_n_plus_one_by_default(shop_db, tmp_path):
    lines = [f"SELECT * FROM orders WHERE user_id = {i};" for i in (1, 2, 3)]
    assert of_kind(analyze(shop_db, tmp_path, *lines), "n_plus_one") == []
    lowered = analyze(
        shop_db, tmp_path, *lines, thresholds=Thresholds(n_plus_one_min=3)
    )
    assert len(of_kind(lowered, "n_plus_one")) == 1


def test_the_same_value_again_and_again_is_not_an_n_plus_one(shop_db, tmp_path):
    lines = ["SELECT * FROM orders WHERE user_id = 9;"] * 8
    assert of_kind(analyze(shop_db, tmp_path, *lines), "n_plus_one") == []


def test_interleaved_children_are_each_a_loop(shop_db, tmp_path):
    lines = ["SELECT id FROM users WHERE country = 'c1' LIMIT 5;"]
    for i in (1, 31, 61, 91, 121):
        lines += [
            f"SELECT * FROM orders WHERE user_id = {i};",
            f"SELECT email FROM users WHERE id = {i};",
        ]
    loops = of_kind(analyze(shop_db, tmp_path, *lines), "n_plus_one")
    assert sorted((f.table, f.evidence["statements_in_loops"]) for f in loops) == [
        ("orders", 5),
        ("users", 5),
    ]


def test_loops_are_counted_per_context(shop_db, tmp_path):
    records = [
        {
            "sql": "SELECT * FROM orders WHERE user_id = ?",
            "params": [i],
            "context": f"req {i % 4}",
        }
        for i in range(8)
    ]
    analysis = analyze(shop_db, tmp_path, *records, name="t.jsonl")
    assert of_kind(analysis, "n_plus_one") == []  # two per request


def test_unlabelled_statements_of_different_threads_are_not_one_loop(shop_db, tmp_path):
    parent = {"sql": "SELECT id FROM users WHERE country = ? LIMIT 6", "params": ["c7"]}
    children = [
        {
            "sql": "SELECT * FROM orders WHERE user_id = ?",
            "params": [i],
            "thread": f"worker {n % 3}",  # two a thread
        }
        for n, i in enumerate((7, 37, 67, 97, 127, 157))
    ]
    threaded = analyze(shop_db, tmp_path, parent, *children, name="t.jsonl")
    assert of_kind(threaded, "n_plus_one") == []
    one_thread = [{**child, "thread": "worker 0"} for child in children]
    analysis = analyze(shop_db, tmp_path, parent, *one_thread, name="t.jsonl")
    (loop,) = of_kind(analysis, "n_plus_one")
    assert loop.evidence["statements_in_loops"] == 6
    assert loop.evidence.get("parent_sql") is None  # the parent ran in another thread
    labelled = [{**child, "context": "GET /orders"} for child in children]
    analysis = analyze(shop_db, tmp_path, parent, *labelled, name="t.jsonl")
    (loop,) = of_kind(analysis, "n_plus_one")  # one request, served by three threads
    assert loop.evidence["statements_in_loops"] == 6


def test_a_captured_loop_is_an_n_plus_one_whatever_ran_before_it(shop_db, tmp_path):
    unrelated = {"sql": "SELECT count(*) FROM users", "caller": "app.py:3"}
    children = [
        {"sql": "SELECT * FROM orders WHERE user_id = ?", "params": [i], "caller": c}
        for i, c in zip((7, 37, 67, 97, 127, 157), ["app.py:9"] * 6, strict=True)
    ]
    analysis = analyze(shop_db, tmp_path, unrelated, *children, name="t.jsonl")
    (loop,) = of_kind(analysis, "n_plus_one")  # the caller line is the loop
    assert loop.evidence["callers"] == ["app.py:9"]
    assert loop.evidence["values_found_in_parent_rows"]["found"] == 0
    uncalled = [{k: v for k, v in c.items() if k != "caller"} for c in children]
    plain = analyze(shop_db, tmp_path, unrelated, *uncalled, name="t.jsonl")
    assert of_kind(plain, "n_plus_one") == []  # a log's repeated searches


def test_keyset_paging_and_table_less_checks_are_not_n_plus_one(shop_db, tmp_path):
    def loop(sql, values):
        return [{"sql": sql, "params": list(v), "context": "req"} for v in values]

    records = [
        *loop("SELECT ? + 1", [(i,) for i in range(6)]),  # a connection check
        *loop(  # page after page, each after the last id of the one before
            "SELECT id, total FROM orders WHERE (id > ?) OR (id = ? AND total > ?) "
            "ORDER BY id, total LIMIT 101",
            [(i * 101, i * 101, 0) for i in range(6)],
        ),
        *loop(  # the latest orders of each user: a loop per parent row
            "SELECT id FROM orders WHERE user_id = ? AND created_at > ? "
            "ORDER BY created_at LIMIT 5",
            [(i, "2024-06") for i in range(1, 7)],
        ),
    ]
    analysis = analyze(shop_db, tmp_path, *records, name="t.jsonl")
    loops = [f.sql for f in of_kind(analysis, "n_plus_one")]
    assert loops == [records[-1]["sql"]]


def test_flags_temp_btree_sort_but_not_an_indexed_order(shop_db, tmp_path):
    analysis = analyze(
        shop_db,
        tmp_path,
        "SELECT * FROM orders ORDER BY created_at LIMIT 5;",
        "SELECT * FROM users ORDER BY email LIMIT 5;",
    )
    (sort,) = of_kind(analysis, "temp_btree")
    assert (sort.table, sort.columns, sort.evidence["sorts"]) == (
        "orders",
        ("created_at",),
        1,
    )


def test_flags_automatic_index_on_the_join_column(shop_db, tmp_path):
    analysis = analyze(
        shop_db,
        tmp_path,
        "SELECT u.email, count(o.id) FROM users u LEFT JOIN orders o ON o.user_id = u.id "
        "WHERE u.country = 'c3' GROUP BY u.id;",
    )
    automatic = of_kind(analysis, "automatic_index")
    assert [(f.table, f.columns) for f in automatic] == [("orders", ("user_id",))]
    assert automatic[0].evidence["autoindex_rows"] > 0


def test_flags_correlated_subquery_scanning_per_outer_row(shop_db, tmp_path):
    analysis = analyze(
        shop_db,
        tmp_path,
        "SELECT u.id, (SELECT count(*) FROM orders o WHERE o.created_at = u.email) "
        "FROM users u WHERE u.id < 20;",
    )
    (found,) = of_kind(analysis, "correlated_subquery")
    assert (found.table, found.columns, found.severity) == (
        "orders",
        ("created_at",),
        "high",
    )


def test_flags_function_on_indexed_column_but_not_on_an_unindexed_one(
    shop_db, tmp_path
):
    analysis = analyze(
        shop_db,
        tmp_path,
        "SELECT * FROM users WHERE lower(email) = 'user5@example.com';",
        "SELECT * FROM users WHERE lower(country) = 'c5';",
    )
    findings = of_kind(analysis, "non_sargable")
    assert [(f.table, f.columns) for f in findings] == [("users", ("email",))]
    assert "lower(email)" in findings[0].message.lower()


def test_flags_leading_wildcard_like_on_an_indexed_column(shop_db, tmp_path):
    analysis = analyze(
        shop_db, tmp_path, "SELECT * FROM users WHERE email LIKE '%@example.com';"
    )
    (found,) = of_kind(analysis, "non_sargable")
    assert found.columns == ("email",) and "wildcard" in found.message


def test_flags_deep_offsets_but_not_shallow_pages(shop_db, tmp_path):
    deep = [
        f"SELECT * FROM orders ORDER BY id LIMIT 50 OFFSET {n};"
        for n in (0, 5000, 15000)
    ]
    (found,) = of_kind(analyze(shop_db, tmp_path, *deep), "offset_pagination")
    assert found.evidence["offsets"] == [0, 5000, 15000]
    assert (
        found.evidence["vm_steps_per_page"][2] > found.evidence["vm_steps_per_page"][0]
    )
    shallow = [
        f"SELECT * FROM orders ORDER BY id LIMIT 20 OFFSET {n};" for n in (20, 40)
    ]
    assert of_kind(analyze(shop_db, tmp_path, *shallow), "offset_pagination") == []


def test_missing_statistics_is_measured_on_a_scratch_copy(tmp_path):
    path = build_events_db(tmp_path / "events.db")
    analysis = analyze(path, tmp_path, "SELECT count(*) FROM events WHERE at > 29990;")
    (found,) = of_kind(analysis, "missing_statistics")
    assert found.evidence["plan_before"] == [
        "SCAN events USING COVERING INDEX events_source_at"
    ]
    assert "ANY(source)" in found.evidence["plan_after"][0]
    assert found.evidence["vm_steps_after"] < found.evidence["vm_steps_before"]
    assert not list(Path(tmp_path).glob("qprof-analyze-*"))

    db = apsw.Connection(str(path))
    db.execute("ANALYZE")
    db.close()
    again = analyze(path, tmp_path, "SELECT count(*) FROM events WHERE at > 29990;")
    assert of_kind(again, "missing_statistics") == []


def test_flags_unindexed_foreign_key_but_not_an_indexed_one(tmp_path):
    path = tmp_path / "fk.db"
    db = apsw.Connection(str(path))
    db.execute(
        """
        CREATE TABLE parent (id INTEGER PRIMARY KEY);
        CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id));
        CREATE TABLE kid (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id));
        CREATE INDEX kid_parent ON kid(parent_id);
        """
    )
    db.close()
    analysis = analyze(path, tmp_path, "SELECT 1;")
    found = of_kind(analysis, "unindexed_foreign_key")
    assert [(f.table, f.columns) for f in found] == [("child", ("parent_id",))]


def test_flags_implicit_foreign_key_joined_on_but_not_declared(shop_db, tmp_path):
    path = tmp_path / "implicit.db"
    db = apsw.Connection(str(path))
    db.execute(
        """
        CREATE TABLE teams (id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE players (id INTEGER PRIMARY KEY, team_id INTEGER, name TEXT);
        """
    )
    db.close()
    analysis = analyze(
        path, tmp_path, "SELECT p.name FROM players p JOIN teams t ON t.id = p.team_id;"
    )
    found = of_kind(analysis, "implicit_foreign_key")
    assert [(f.table, f.columns) for f in found] == [("players", ("team_id",))]
    # A declared reference is not implicit.
    assert (
        of_kind(
            analyze(
                shop_db,
                tmp_path,
                "SELECT * FROM orders o JOIN users u ON u.id = o.user_id;",
            ),
            "implicit_foreign_key",
        )
        == []
    )


def test_flags_index_that_is_a_prefix_of_another_but_not_a_unique_one(tmp_path):
    path = tmp_path / "redundant.db"
    db = apsw.Connection(str(path))
    db.execute(
        """
        CREATE TABLE t (a, b, c);
        CREATE INDEX t_a ON t(a);
        CREATE INDEX t_a_b ON t(a, b);
        CREATE UNIQUE INDEX t_c ON t(c);
        CREATE INDEX t_c_a ON t(c, a);
        """
    )
    db.close()
    found = of_kind(analyze(path, tmp_path, "SELECT 1;"), "redundant_index")
    assert [(f.evidence["index"], f.evidence["covered_by"]) for f in found] == [
        ("t_a", "t_a_b")
    ]


def test_flags_unused_index_only_when_the_workload_writes_its_table(shop_db, tmp_path):
    writes = "UPDATE users SET country = 'x' WHERE id = 5;"
    found = of_kind(analyze(shop_db, tmp_path, writes), "unused_index")
    assert [(f.table, f.evidence["index"]) for f in found] == [("users", "users_email")]
    used = "SELECT id FROM users WHERE email = 'user3@example.com';"
    assert of_kind(analyze(shop_db, tmp_path, writes, used), "unused_index") == []
    assert of_kind(analyze(shop_db, tmp_path, used), "unused_index") == []


def test_sql_sqlglot_cannot_parse_still_gets_plan_findings(shop_db, tmp_path):
    # A table-valued function in a subquery: valid SQLite that sqlglot cannot qualify.
    analysis = analyze(
        shop_db,
        tmp_path,
        "SELECT * FROM orders WHERE created_at = 'x' "
        "AND total IN (SELECT value FROM json_each('[1,2]')) ORDER BY created_at;",
    )
    assert analysis.unparsed == 1
    assert [f.table for f in of_kind(analysis, "full_scan")] == ["orders"]


def test_findings_come_costliest_first(shop_db, tmp_path):
    analysis = analyze(
        shop_db,
        tmp_path,
        "SELECT * FROM orders WHERE created_at = '2024-01-01';",
        *[
            f"SELECT * FROM orders WHERE created_at = '2024-02-{d:02}';"
            for d in range(1, 9)
        ],
        "SELECT * FROM users WHERE country = 'c1';",
    )
    shares = [f.time_share for f in analysis.findings if f.fingerprint]
    assert shares == sorted(shares, reverse=True)
    assert analysis.findings[0].table == "orders"


def test_statements_sqlglot_reads_as_bare_commands_log_no_warning(caplog):
    from qprof.schema import Schema
    from qprof.usage import statement_usage

    with caplog.at_level("WARNING"):
        statement_usage('SAVEPOINT "sqlite_utils_query"', Schema({}, False))
        statement_usage('RELEASE "sqlite_utils_query"', Schema({}, False))
    assert [r for r in caplog.records if r.name.startswith("sqlglot")] == []
