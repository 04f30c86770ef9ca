"""Each case from tests/data/cases gives the findings its expected.json names.

A case is a folder: schema.sql builds the database, workload.sql is replayed,
expected.json lists the findings (kind, table, and columns of which at least
one must be named) and those that must not appear. A new case adds files.
"""

from __future__ import annotations

import json

import pytest

from .conftest import CASE_DIRS


@pytest.mark.skipif(not CASE_DIRS, reason="tests/data/cases is missing")
@pytest.mark.parametrize("case", CASE_DIRS, ids=lambda p: p.name)
def test_case_gives_the_expected_findings(case, analyses):
    expected = json.loads((case / "expected.json").read_text())
    profile, analysis = analyses[case.name]
    assert profile.statements == expected["statements"]
    assert profile.error_count == 0
    assert analysis.failed == {}
    for want in expected["findings"]:
        matching = [
            f
            for f in analysis.findings
            if f.kind == want["kind"]
            and (f.table or "").lower() == want["table"].lower()
        ]
        assert matching, f"no {want['kind']} finding on {want['table']}"
        if want["columns_any"]:
            named = {c.lower() for f in matching for c in f.columns}
            assert named & {c.lower() for c in want["columns_any"]}, (want, named)
    for unwanted in expected["not_flagged"]:
        assert not [
            f
            for f in analysis.findings
            if f.kind == unwanted["kind"]
            and (f.table or "").lower() == unwanted["table"].lower()
        ], unwanted


@pytest.mark.skipif(not CASE_DIRS, reason="tests/data/cases is missing")
def test_costliest_problem_comes_first_in_the_correlated_case(analyses):
    # Case 07: the correlated NOT EXISTS over call_ref costs ~99% of the time.
    _, analysis = analyses["07-lower-expression-index"]
    first = analysis.findings[0]
    assert first.table == "call_ref" and first.time_share > 0.9


@pytest.mark.skipif(not CASE_DIRS, reason="tests/data/cases is missing")
def test_n_plus_one_children_are_nested_under_their_parent(analyses):
    _, analysis = analyses["15-n-plus-one-sqlalchemy-lazy"]
    loops = {f.table: f for f in analysis.findings if f.kind == "n_plus_one"}
    sources = loops["source_message_association_table"]
    messages = loops["messages"]
    assert sources.evidence["statements_in_loops"] == 500
    assert messages.evidence["statements_in_loops"] == 50
    assert sources.evidence["nested_in"] == messages.fingerprint
    assert "FROM chats" in messages.evidence["parent_sql"]
    # The chats query's rows hold every chat id the messages loop looked up first.
    found = messages.evidence["values_found_in_parent_rows"]
    assert found["found"] == found["checked"] > 0
