"""Fingerprints: equal for equal shapes, different for different shapes."""

from __future__ import annotations

import hashlib

import pytest

from qprof.fingerprint import fingerprint_sql, normalize_sql

SAME_SHAPE = [
    (
        "SELECT * FROM users WHERE id = 1",
        "select *  from USERS where ID = 42 -- comment",
        'SELECT * FROM "users" WHERE [id] = ?',
        "SELECT * FROM users WHERE id = :id;",
        "SELECT * FROM users WHERE id = -7",
        "/* tag */ SELECT * FROM `users` WHERE id = 'abc'",
    ),
    (
        "SELECT name FROM t WHERE k IN (1)",
        "SELECT name FROM t WHERE k IN (1, 2, 3, 4, 5)",
        "SELECT name FROM t WHERE k IN (?, ?)",
    ),
    (
        "INSERT INTO t (a, b) VALUES (1, 'x')",
        "INSERT INTO t (a, b) VALUES (2, 'y'), (3, 'z'), (4, NULL)",
    ),
    (
        "SELECT * FROM t LIMIT 10 OFFSET 20",
        "SELECT * FROM t LIMIT ? OFFSET ?",
    ),
    ("SELECT x'00ff', 1.5e3, .5, 0x1F", "SELECT ?, ?, ?, ?"),
]

DIFFERENT_SHAPES = [
    "SELECT * FROM users WHERE id = ?",
    "SELECT * FROM users WHERE email = ?",
    "SELECT * FROM orders WHERE id = ?",
    "SELECT id FROM users WHERE id = ?",
    "SELECT * FROM users WHERE id > ?",
    "SELECT * FROM users WHERE id IS NULL",
    "SELECT * FROM users WHERE id IS NOT NULL",
    "SELECT * FROM users WHERE id = ? ORDER BY name",
    "SELECT * FROM users WHERE id IN (SELECT user_id FROM orders)",
    "SELECT * FROM users WHERE id - ? = ?",
    'SELECT * FROM "user list" WHERE id = ?',
]


@pytest.mark.parametrize("group", SAME_SHAPE, ids=lambda g: g[0][:30])
def test_equal_shapes_share_a_fingerprint(group):
    ids = {fingerprint_sql(sql).id for sql in group}
    assert len(ids) == 1


def test_different_shapes_get_different_fingerprints():
    ids = {fingerprint_sql(sql).id for sql in DIFFERENT_SHAPES}
    assert len(ids) == len(DIFFERENT_SHAPES)


def test_normalised_text_reads_like_sql():
    assert normalize_sql(
        "select a, count(*) from T where b = 'x' and c in (1,2) group by a"
    ) == ("SELECT a, count(*) FROM t WHERE b = ? AND c IN (...) GROUP BY a")
    assert normalize_sql("INSERT INTO t VALUES (1, 'a'), (2, 'b');") == (
        "INSERT INTO t VALUES (?, ?)"
    )
    assert normalize_sql("SELECT a - 1, -2 FROM t") == "SELECT a - ?, ? FROM t"


def test_strings_with_comment_markers_and_quotes_are_one_literal():
    assert normalize_sql("SELECT * FROM t WHERE a = 'it''s -- not /* a comment'") == (
        "SELECT * FROM t WHERE a = ?"
    )


def test_id_is_the_short_blake2b_of_the_normalised_text():
    fp = fingerprint_sql("SELECT * FROM t WHERE a = 5")
    assert fp.text == "SELECT * FROM t WHERE a = ?"
    expected = hashlib.blake2b(
        b"SELECT * FROM t WHERE a = ?", digest_size=6
    ).hexdigest()
    assert fp.id == expected and len(fp.id) == 12


def test_long_literals_and_lists_fingerprint_without_blowing_up():
    literal = "SELECT '" + "x" * 2_000_000 + "', 'it''s'"
    assert normalize_sql(literal) == "SELECT ?, ?"
    big_in = "SELECT * FROM t WHERE id IN (" + ",".join(map(str, range(100_000))) + ")"
    assert normalize_sql(big_in) == "SELECT * FROM t WHERE id IN (...)"


def test_quoted_names_with_doubled_quotes_keep_one_quote():
    assert normalize_sql('SELECT "a""b" FROM t') == 'SELECT "a""b" FROM t'
