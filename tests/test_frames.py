"""Frames: the profile as typed DataFrames, from a replay and from a measured trace."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import qprof
from qprof.cli import main
from qprof.frames import Profile, plan_kinds
from qprof.plan import PlanLine

from .small_workload import (
    LOOP,
    POINT_SQL,
    ROWS,
    SCAN_SQL,
    SCANS,
    TS0,
    small_inputs,
    small_profile,
)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return small_inputs(tmp_path_factory)


@pytest.fixture(scope="module")
def replayed(small: tuple[Path, Path]) -> Profile:
    return small_profile(small)


def fingerprint_of(sql: str) -> str:
    return qprof.fingerprint_sql(sql).id


def test_qprof_load_is_the_function_and_the_module_still_imports(small):
    from qprof.loading import profile_trace

    db, trace = small
    assert callable(qprof.load) and qprof.load.__module__ == "qprof"
    assert profile_trace(trace, db).statements == LOOP + SCANS + 1
    profile = qprof.load(str(trace), db=str(db))
    assert isinstance(profile, Profile)
    assert len(profile.statements) == LOOP + SCANS + 1


def test_statements_frame_has_one_typed_row_per_statement(replayed):
    statements = replayed.statements
    assert len(statements) == LOOP + SCANS + 1
    assert statements["position"].tolist() == list(range(LOOP + SCANS + 1))
    for column in ("elapsed_ns", "vm_step", "fullscan_step", "rows_returned", "line"):
        assert statements[column].dtype == "int64", column
    assert statements["elapsed_ms"].dtype == "float64"
    assert (statements["elapsed_ms"] == statements["elapsed_ns"] / 1e6).all()
    assert isinstance(statements["ts"].dtype, pd.DatetimeTZDtype)
    assert statements["ts"].iloc[1] == pd.Timestamp(TS0, unit="s", tz="UTC")
    assert pd.api.types.is_string_dtype(statements["fingerprint"])
    loop = statements[statements["fingerprint"] == fingerprint_of(POINT_SQL)]
    assert len(loop) == LOOP
    assert set(loop["context"]) == {"GET /cart"}
    assert loop["rows_returned"].tolist() == [1] * LOOP
    scans = statements[statements["fingerprint"] == fingerprint_of(SCAN_SQL)]
    # FULLSCAN_STEP counts the steps from one row to the next: N rows, N - 1 steps.
    assert scans["fullscan_step"].tolist() == [ROWS - 1] * SCANS


def test_fingerprint_totals_are_the_sums_of_their_statements(replayed):
    fingerprints = replayed.fingerprints.set_index("fingerprint")
    sums = replayed.statements.groupby("fingerprint")[["elapsed_ns", "vm_step"]].sum()
    assert len(fingerprints) == 3
    point = fingerprint_of(POINT_SQL)
    assert fingerprints.loc[point, "count"] == LOOP
    assert fingerprints.loc[fingerprint_of(SCAN_SQL), "count"] == SCANS
    for fid in fingerprints.index:
        assert fingerprints.loc[fid, "total_ns"] == sums.loc[fid, "elapsed_ns"]
        assert fingerprints.loc[fid, "vm_step"] == sums.loc[fid, "vm_step"]
    assert fingerprints["total_ns"].dtype == "int64"
    assert (
        fingerprints["total_ms"].tolist() == (fingerprints["total_ns"] / 1e6).tolist()
    )
    assert fingerprints["share"].sum() == pytest.approx(1.0)
    assert replayed.fingerprints["cumulative_share"].iloc[-1] == pytest.approx(1.0)
    assert replayed.fingerprints["total_ns"].is_monotonic_decreasing
    assert (
        fingerprints.loc[point, "plan"]
        == "SEARCH items USING COVERING INDEX items_sku (sku=?)"
    )
    assert fingerprints.loc[point, "has_search"]
    assert not fingerprints.loc[point, "has_full_scan"]
    assert fingerprints.loc[fingerprint_of(SCAN_SQL), "has_full_scan"]


def test_findings_frame_names_the_loop_and_the_scan(replayed):
    findings = replayed.findings
    assert isinstance(findings["severity"].dtype, pd.CategoricalDtype)
    assert list(findings["severity"].cat.categories) == ["high", "medium", "low"]
    loop = findings[findings["kind"] == "n_plus_one"]
    assert loop["fingerprint"].tolist() == [fingerprint_of(POINT_SQL)]
    scan = findings[findings["kind"] == "full_scan"]
    assert scan["fingerprint"].tolist() == [fingerprint_of(SCAN_SQL)]
    assert scan["table"].tolist() == ["items"]
    assert findings["time_share"].between(0, 1).all()


def test_loops_frame_counts_the_repeats_in_their_context(replayed):
    loops = replayed.loops
    row = loops[loops["fingerprint"] == fingerprint_of(POINT_SQL)].iloc[0]
    assert (row["context"], row["count"]) == ("GET /cart", LOOP)
    assert (row["first_position"], row["last_position"]) == (1, LOOP)


def test_recommendations_frames_hold_the_measured_index(replayed):
    recommendations = replayed.recommendations
    assert recommendations["name"].tolist() == ["idx_items_category"]
    assert recommendations["ddl"].iloc[0].startswith("CREATE INDEX idx_items_category")
    assert recommendations["size_bytes"].dtype == "int64"
    served = replayed.served
    assert served["fingerprint"].tolist() == [fingerprint_of(SCAN_SQL)]
    assert served["count"].tolist() == [SCANS]
    assert (served["vm_after"] < served["vm_before"]).all()
    assert served["ns_before"].dtype == "int64"
    curve = replayed.curve
    assert curve["pick"].tolist() == [0, 1]
    assert curve["storage_bytes"].tolist() == [
        0,
        recommendations["storage_after"].iloc[0],
    ]
    assert curve["workload_vm"].iloc[1] < curve["workload_vm"].iloc[0]
    assert replayed.recommended is not None
    assert curve["workload_vm"].iloc[0] == replayed.recommended.baseline_vm


def test_recommender_runs_only_when_asked(small):
    db, trace = small
    profile = qprof.replay_profile(trace, db)
    assert profile.recommended is None
    assert profile.recommendations.empty and profile.curve.empty
    assert profile.recommendations["saving_ns"].dtype == "int64"
    assert not profile.findings.empty


def test_load_reads_a_measured_trace_without_running_it_again(small, tmp_path):
    db, trace = small
    measured = tmp_path / "measured.jsonl"
    result = CliRunner().invoke(
        main,
        ["replay", str(trace), "--db", str(db), "--out", str(measured), "--no-analyze"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    profile = qprof.load(measured, db=db)
    assert profile.workload.mode == "trace"
    times = pd.read_json(measured, lines=True).dropna(subset=["sql"])["measured"]
    assert profile.statements["elapsed_ns"].tolist() == [m["elapsed_ns"] for m in times]
    assert profile.statements["ts"].iloc[1] == pd.Timestamp(TS0, unit="s", tz="UTC")
    point = profile.fingerprints.set_index("fingerprint").loc[fingerprint_of(POINT_SQL)]
    assert point["count"] == LOOP


def test_plan_kinds_tell_scans_searches_sorts_and_automatic_indexes_apart():
    plan = (
        PlanLine(0, "SCAN t"),
        PlanLine(0, "SEARCH u USING INDEX u_a (a=?)"),
        PlanLine(0, "SCAN v USING COVERING INDEX v_b"),
        PlanLine(0, "SEARCH w USING AUTOMATIC COVERING INDEX (c=?)"),
        PlanLine(0, "USE TEMP B-TREE FOR ORDER BY"),
    )
    assert plan_kinds(plan) == {
        "full scan",
        "search",
        "index scan",
        "automatic index",
        "temp B-tree",
    }
