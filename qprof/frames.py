"""Frames: a profile as pandas DataFrames, for notebooks and scripts.

``load_profile`` (``qprof.load``) reads a trace (a measured one written by
``qprof replay --out`` is read as it is, any other workload is replayed) and
``replay_profile`` replays a workload; both return a ``Profile`` whose
``statements``, ``fingerprints``, ``findings``, ``recommendations``,
``served``, ``curve`` and ``loops`` attributes are DataFrames with typed
columns: times as int64 nanoseconds (``*_ns``) with float milliseconds beside
them (``*_ms``), counters as int64, timestamps as UTC datetimes::

    import qprof
    p = qprof.load("measured.jsonl", db="app.db")
    p.fingerprints[["fingerprint", "count", "total_ms", "share"]].head()
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from qprof.analyze import Analysis, Thresholds, analyze_profile
from qprof.errors import DatabaseError
from qprof.loading import profile_trace
from qprof.plan import Plan
from qprof.profile import FingerprintProfile, Measurement, WorkloadProfile
from qprof.recommend import RecommendationSet, RecommendOptions, recommend_indexes
from qprof.replay import replay_workload

NS_PER_MS = 1_000_000
SEVERITY_ORDER = ("high", "medium", "low")
PLAN_KINDS = ("full scan", "index scan", "search", "temp B-tree", "automatic index")
"""The plan steps ``plan_kinds`` tells apart, in the order plots show them."""
_STRING = pd.StringDtype()


@dataclass
class Profile:
    """A measured workload with its findings and recommendations, as DataFrames."""

    workload: WorkloadProfile
    """The profile the frames were made from."""
    analysis: Analysis | None
    """The analyzer's findings (None when it did not run)."""
    recommended: RecommendationSet | None
    """The recommender's answer (None when it did not run)."""
    statements: pd.DataFrame
    """One row per statement, in workload order (``position`` is 0-based)."""
    fingerprints: pd.DataFrame
    """One row per fingerprint, costliest (by total time) first."""
    findings: pd.DataFrame
    """One row per finding, costliest first."""
    recommendations: pd.DataFrame
    """One row per recommended index, largest net saving first."""
    served: pd.DataFrame
    """One row per statement shape a recommended index serves, before and after."""
    curve: pd.DataFrame
    """The workload's VM steps after each pick against cumulative storage (pick 0: none)."""
    loops: pd.DataFrame
    """One row per fingerprint that repeated in one context (N+1 candidates)."""

    def __repr__(self) -> str:
        """A line of counts (the frames themselves print as tables)."""
        return (
            f"<qprof Profile of {self.workload.workload}: "
            f"{len(self.statements)} statements, {len(self.fingerprints)} fingerprints, "
            f"{len(self.findings)} findings, {len(self.recommendations)} recommendations>"
        )

    @classmethod
    def from_results(
        cls,
        workload: WorkloadProfile,
        analysis: Analysis | None = None,
        recommended: RecommendationSet | None = None,
        statements: StatementRows | None = None,
    ) -> Profile:
        """Return the frames of results the pipeline already produced.

        ``statements`` holds the per-statement rows (collected with
        ``StatementRows.add`` as ``on_measurement``); without it the
        ``statements`` frame is empty.
        """
        rows = statements or StatementRows()
        return cls(
            workload=workload,
            analysis=analysis,
            recommended=recommended,
            statements=rows.frame(),
            fingerprints=fingerprints_frame(workload),
            findings=findings_frame(analysis),
            recommendations=recommendations_frame(recommended),
            served=served_frame(recommended),
            curve=curve_frame(recommended),
            loops=loops_frame(workload),
        )

    @classmethod
    def from_replay(
        cls, workload: str | Path, db: str | Path, **options: Any
    ) -> Profile:
        """Replay ``workload`` against ``db``; see ``replay_profile``."""
        return replay_profile(workload, db, **options)


def load_profile(
    trace: str | Path,
    db: str | Path | None = None,
    *,
    analyze: bool = True,
    recommend: bool = False,
    strict: bool = False,
    thresholds: Thresholds | None = None,
    options: RecommendOptions | None = None,
) -> Profile:
    """Return the profile of a trace as DataFrames (``qprof.load``).

    A trace written by ``qprof replay --out`` is read with its measurements and
    nothing runs again; any other workload is replayed against ``db`` (never
    written). A captured trace needs no ``db``: plans are then taken on an empty
    replica of its schema. The analyzer runs unless ``analyze`` is False; the
    recommender, which measures candidates on a scratch copy and takes seconds,
    only with ``recommend=True`` (and a ``db``). Raises ``WorkloadError`` and
    ``DatabaseError`` as ``qprof analyze`` does.
    """
    if recommend and db is None:
        raise DatabaseError(trace, "recommend=True needs the database: give db")
    rows = StatementRows()
    workload = profile_trace(trace, db, strict=strict, on_measurement=rows.add)
    return _finish(workload, db, rows, analyze, recommend, thresholds, options)


def replay_profile(
    workload: str | Path,
    db: str | Path,
    *,
    format: str | None = None,
    repeat: int = 1,
    analyze: bool = True,
    recommend: bool = False,
    strict: bool = False,
    thresholds: Thresholds | None = None,
    options: RecommendOptions | None = None,
) -> Profile:
    """Replay ``workload`` against ``db`` and return its profile as DataFrames.

    Every statement is measured as ``qprof replay`` does (``format`` names a
    reader, None detects it; read statements run ``repeat`` times). The
    analyzer and the recommender run as in ``load_profile``.
    """
    rows = StatementRows()
    profile = replay_workload(
        workload,
        db,
        format=format,
        repeat=repeat,
        strict=strict,
        on_measurement=rows.add,
    )
    return _finish(profile, db, rows, analyze, recommend, thresholds, options)


class StatementRows:
    """Per-statement measurements kept as columns, one ``add`` per statement."""

    _INTS = (
        "elapsed_ns",
        "vm_step",
        "fullscan_step",
        "sort",
        "autoindex",
        "rows_returned",
        "rows_changed",
    )

    def __init__(self) -> None:
        self._columns: dict[str, list[Any]] = {
            name: []
            for name in (
                "fingerprint",
                "source",
                "line",
                "context",
                "caller",
                "ts",
                "logged_ns",
                "readonly",
                "error",
                *self._INTS,
            )
        }

    def __len__(self) -> int:
        return len(self._columns["fingerprint"])

    def add(self, measurement: Measurement) -> None:
        """Keep one measured statement (use as ``on_measurement``)."""
        # Limitation: every statement's row is held in memory until the frame is built.
        columns = self._columns
        statement = measurement.statement
        columns["fingerprint"].append(measurement.fingerprint.id)
        columns["source"].append(statement.source)
        columns["line"].append(statement.line)
        columns["context"].append(statement.context)
        columns["caller"].append(statement.caller)
        columns["ts"].append(statement.ts)
        columns["logged_ns"].append(statement.logged_ns)
        columns["readonly"].append(measurement.readonly)
        columns["error"].append(measurement.error)
        for name in self._INTS:
            columns[name].append(getattr(measurement, name))

    def frame(self) -> pd.DataFrame:
        """Return the statements as a DataFrame, in workload order."""
        columns = self._columns
        count = len(self)
        frame = pd.DataFrame(
            {
                "position": pd.array(range(count), dtype="int64"),
                "fingerprint": pd.array(columns["fingerprint"], dtype=_STRING),
                "source": pd.array(columns["source"], dtype=_STRING),
                "line": pd.array(columns["line"], dtype="int64"),
                "context": pd.array(columns["context"], dtype=_STRING),
                "caller": pd.array(columns["caller"], dtype=_STRING),
                "ts": pd.to_datetime(
                    pd.Series(columns["ts"], dtype="float64"), unit="s", utc=True
                ),
                "readonly": pd.array(columns["readonly"], dtype="bool"),
                "error": pd.array(columns["error"], dtype=_STRING),
                "logged_ns": pd.array(columns["logged_ns"], dtype="Int64"),
            }
        )
        for name in self._INTS:
            frame[name] = pd.array(columns[name], dtype="int64")
        frame["elapsed_ms"] = frame["elapsed_ns"] / NS_PER_MS
        return frame


def fingerprints_frame(profile: WorkloadProfile) -> pd.DataFrame:
    """Return one row per fingerprint, costliest first, with its plan kinds."""
    rows = [_fingerprint_row(profile, fp) for fp in profile.costliest()]
    frame = pd.DataFrame(rows, columns=list(_FINGERPRINT_COLUMNS))
    frame = frame.astype(_FINGERPRINT_COLUMNS)
    for name in ("total", "mean", "p50", "p95"):
        frame[f"{name}_ms"] = frame[f"{name}_ns"] / NS_PER_MS
    frame["cumulative_share"] = frame["share"].cumsum()
    return frame


def findings_frame(analysis: Analysis | None) -> pd.DataFrame:
    """Return one row per finding, costliest first (empty when none ran)."""
    findings = analysis.findings if analysis else []
    rows = [
        {
            "kind": f.kind,
            "severity": f.severity,
            "fingerprint": f.fingerprint,
            "table": f.table,
            "columns": ", ".join(f.columns),
            "message": f.message,
            "advice": f.advice,
            "time_share": f.time_share,
            "vm_share": f.vm_share,
            "total_ns": int(f.evidence.get("total_ns", 0) or 0),
            "fingerprints": " ".join(f.fingerprints),
            "sql": f.sql,
            "evidence": f.evidence,
        }
        for f in findings
    ]
    frame = pd.DataFrame(rows, columns=list(_FINDING_COLUMNS))
    frame = frame.astype(_FINDING_COLUMNS)
    frame["severity"] = pd.Categorical(
        frame["severity"], categories=SEVERITY_ORDER, ordered=True
    )
    frame["total_ms"] = frame["total_ns"] / NS_PER_MS
    return frame


def recommendations_frame(recommended: RecommendationSet | None) -> pd.DataFrame:
    """Return one row per recommended index, largest net saving first."""
    picks = recommended.recommendations if recommended else []
    rows = [
        {
            "rank": r.rank,
            "pick": r.pick,
            "name": r.name,
            "table": r.table,
            "columns": ", ".join(r.columns),
            "kind": r.kind,
            "ddl": r.ddl,
            "statistics": r.statistics,
            "vm_saving": r.vm_saving,
            "net_vm_saving": r.net_vm,
            "saving_ns": round(r.ns_saving),
            "write_vm": r.write_vm,
            "write_ns": round(r.write_ns),
            "size_bytes": r.size_bytes,
            "saving_pct": _saving_pct(r.net_vm, recommended),
            "workload_vm_after": r.workload_vm_after,
            "storage_after": r.storage_after,
            "served": len(r.served),
            "replaces": ", ".join(r.replaces),
        }
        for r in picks
    ]
    frame = pd.DataFrame(rows, columns=list(_RECOMMENDATION_COLUMNS))
    frame = frame.astype(_RECOMMENDATION_COLUMNS)
    frame["saving_ms"] = frame["saving_ns"] / NS_PER_MS
    frame["write_ms"] = frame["write_ns"] / NS_PER_MS
    return frame


def served_frame(recommended: RecommendationSet | None) -> pd.DataFrame:
    """Return one row per (recommended index, statement it serves), measured before and after.

    ``vm_before``/``vm_after`` and ``ns_before``/``ns_after`` are per statement
    (the mean over the sampled values), as the recommender measured them.
    """
    picks = recommended.recommendations if recommended else []
    rows = [
        {
            "rank": r.rank,
            "name": r.name,
            "fingerprint": s.fingerprint,
            "sql": s.sql,
            "count": s.count,
            "vm_before": s.vm_before,
            "vm_after": s.vm_after,
            "ns_before": round(s.ns_before),
            "ns_after": round(s.ns_after),
            "plan_before": " | ".join(line.strip() for line in s.plan_before),
            "plan_after": " | ".join(line.strip() for line in s.plan_after),
        }
        for r in picks
        for s in r.served
    ]
    frame = pd.DataFrame(rows, columns=list(_SERVED_COLUMNS))
    frame = frame.astype(_SERVED_COLUMNS)
    frame["ms_before"] = frame["ns_before"] / NS_PER_MS
    frame["ms_after"] = frame["ns_after"] / NS_PER_MS
    return frame


def curve_frame(recommended: RecommendationSet | None) -> pd.DataFrame:
    """Return the cost-versus-storage curve: pick 0 (no new index), then each pick in order."""
    rows: list[dict[str, Any]] = []
    if recommended is not None:
        rows.append(
            {
                "pick": 0,
                "name": "(none)",
                "workload_vm": recommended.baseline_vm,
                "storage_bytes": 0,
            }
        )
        for r in sorted(recommended.recommendations, key=lambda r: r.pick):
            rows.append(
                {
                    "pick": r.pick,
                    "name": r.name,
                    "workload_vm": r.workload_vm_after,
                    "storage_bytes": r.storage_after,
                }
            )
    frame = pd.DataFrame(rows, columns=["pick", "name", "workload_vm", "storage_bytes"])
    frame = frame.astype(
        {
            "pick": "int64",
            "name": _STRING,
            "workload_vm": "float64",
            "storage_bytes": "int64",
        }
    )
    frame["storage_mb"] = frame["storage_bytes"] / 1024**2
    return frame


def loops_frame(profile: WorkloadProfile) -> pd.DataFrame:
    """Return one row per fingerprint that repeated within one context, longest first."""
    rows = [
        {
            "context": loop.context,
            "fingerprint": loop.fingerprint,
            "count": loop.count,
            "elapsed_ns": loop.elapsed_ns,
            "first_position": loop.first_index,
            "last_position": loop.last_index,
        }
        for loop in profile.loops
    ]
    columns = {
        "context": _STRING,
        "fingerprint": _STRING,
        "count": "int64",
        "elapsed_ns": "int64",
        "first_position": "int64",
        "last_position": "int64",
    }
    frame = pd.DataFrame(rows, columns=list(columns)).astype(columns)
    frame = frame.sort_values(["elapsed_ns", "count"], ascending=False, kind="stable")
    frame = frame.reset_index(drop=True)
    frame["elapsed_ms"] = frame["elapsed_ns"] / NS_PER_MS
    return frame


def plan_kinds(plan: Plan) -> set[str]:
    """Return the kinds of step in ``plan`` (see ``PLAN_KINDS``).

    >>> from qprof.plan import PlanLine
    >>> sorted(plan_kinds((PlanLine(0, "SCAN t"), PlanLine(0, "USE TEMP B-TREE FOR ORDER BY"))))
    ['full scan', 'temp B-tree']
    """
    kinds = set()
    for line in plan:
        detail = line.detail
        if "AUTOMATIC" in detail:
            kinds.add("automatic index")
        elif detail.startswith("SCAN "):
            using_index = " USING " in detail and "INDEX" in detail
            kinds.add("index scan" if using_index else "full scan")
        elif detail.startswith("SEARCH "):
            kinds.add("search")
        if "TEMP B-TREE" in detail:
            kinds.add("temp B-tree")
    return kinds


def short_label(fingerprint: str, sql: str, width: int = 32) -> str:
    """Return a fingerprint's id and the start of its SQL, for axis labels.

    >>> short_label("fdc5dccd52c8", "SELECT id, name FROM agents WHERE tenant_id = ?", 20)
    'fdc5dccd52c8 SELECT id, name FRO…'
    """
    flat = " ".join(sql.split())
    if len(flat) > width:
        flat = flat[: width - 1] + "…"
    return f"{fingerprint} {flat}"


def plan_kind_column(kind: str) -> str:
    """Return the fingerprints frame's boolean column for a plan kind.

    >>> plan_kind_column("temp B-tree")
    'has_temp_btree'
    """
    return f"has_{kind.replace(' ', '_').replace('-', '').lower()}"


_FINGERPRINT_COLUMNS: dict[str, Any] = {
    "fingerprint": _STRING,
    "label": _STRING,
    "sql": _STRING,
    "sample_sql": _STRING,
    "first_location": _STRING,
    "readonly": "bool",
    "count": "int64",
    "errors": "int64",
    "total_ns": "int64",
    "mean_ns": "int64",
    "p50_ns": "int64",
    "p95_ns": "int64",
    "share": "float64",
    "vm_step": "int64",
    "fullscan_step": "int64",
    "sort": "int64",
    "autoindex": "int64",
    "rows_returned": "int64",
    "rows_changed": "int64",
    "contexts": "int64",
    "plan": _STRING,
    "plan_varies": "bool",
    **{plan_kind_column(kind): "bool" for kind in PLAN_KINDS},
}
_FINDING_COLUMNS: dict[str, Any] = {
    "kind": _STRING,
    "severity": _STRING,
    "fingerprint": _STRING,
    "table": _STRING,
    "columns": _STRING,
    "message": _STRING,
    "advice": _STRING,
    "time_share": "float64",
    "vm_share": "float64",
    "total_ns": "int64",
    "fingerprints": _STRING,
    "sql": _STRING,
    "evidence": "object",
}
_RECOMMENDATION_COLUMNS: dict[str, Any] = {
    "rank": "int64",
    "pick": "int64",
    "name": _STRING,
    "table": _STRING,
    "columns": _STRING,
    "kind": _STRING,
    "ddl": _STRING,
    "statistics": _STRING,
    "vm_saving": "float64",
    "net_vm_saving": "float64",
    "saving_ns": "int64",
    "write_vm": "float64",
    "write_ns": "int64",
    "size_bytes": "int64",
    "saving_pct": "float64",
    "workload_vm_after": "float64",
    "storage_after": "int64",
    "served": "int64",
    "replaces": _STRING,
}
_SERVED_COLUMNS: dict[str, Any] = {
    "rank": "int64",
    "name": _STRING,
    "fingerprint": _STRING,
    "sql": _STRING,
    "count": "int64",
    "vm_before": "float64",
    "vm_after": "float64",
    "ns_before": "int64",
    "ns_after": "int64",
    "plan_before": _STRING,
    "plan_after": _STRING,
}


def _fingerprint_row(
    profile: WorkloadProfile, fp: FingerprintProfile
) -> dict[str, Any]:
    fid = fp.fingerprint.id
    kinds = plan_kinds(fp.plan)
    row: dict[str, Any] = {
        "fingerprint": fid,
        "label": short_label(fid, fp.fingerprint.text),
        "sql": fp.fingerprint.text,
        "sample_sql": fp.sample_sql,
        "first_location": fp.first_location,
        "readonly": fp.readonly,
        "count": fp.count,
        "errors": fp.errors,
        "total_ns": fp.total_ns,
        "mean_ns": fp.mean_ns,
        "p50_ns": fp.percentile_ns(50),
        "p95_ns": fp.percentile_ns(95),
        "share": profile.share(fp),
        "vm_step": fp.vm_step,
        "fullscan_step": fp.fullscan_step,
        "sort": fp.sort,
        "autoindex": fp.autoindex,
        "rows_returned": fp.rows_returned,
        "rows_changed": fp.rows_changed,
        "contexts": len(fp.contexts),
        "plan": " | ".join(line.detail for line in fp.plan),
        "plan_varies": fp.plan_varies,
    }
    for kind in PLAN_KINDS:
        row[plan_kind_column(kind)] = kind in kinds
    return row


def _saving_pct(net_vm: float, recommended: RecommendationSet | None) -> float:
    baseline = recommended.baseline_vm if recommended else 0.0
    return 100 * net_vm / baseline if baseline else 0.0


def _finish(
    workload: WorkloadProfile,
    db: str | Path | None,
    rows: StatementRows,
    analyze: bool,
    recommend: bool,
    thresholds: Thresholds | None,
    options: RecommendOptions | None,
) -> Profile:
    analysis = (
        analyze_profile(workload, db, thresholds) if analyze or recommend else None
    )
    recommended = None
    if recommend:
        context = analysis.context if analysis else None
        if db is None:
            raise DatabaseError(workload.workload, "recommending needs the database")
        recommended = recommend_indexes(workload, db, options, context)
    return Profile.from_results(workload, analysis, recommended, rows)
