"""unindexed_filter: a filter or join on columns no index can serve.

Per statement and table, the filter shape is the set of columns compared with
a value (=, IN, IS NULL, ranges, LIKE) or with a column of an enclosing query
(a correlated subquery). When no index of the table can serve any of them
(``serving_index``: SQLite's own leading-column rule), the table is read row
by row; that is the finding. A join column is flagged when it has no index
and the plan shows the table read by a scan or an automatic index inside the
join. Findings with the same table and columns are merged across statements.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from qprof.analyze.finding import AnalysisContext, Finding, serving_index
from qprof.analyze.plans import is_scanned_inside_join, plan_steps
from qprof.profile import FingerprintProfile
from qprof.readers.sql_text import without_literals
from qprof.usage import ColumnUse, StatementUsage

_EQUAL = ("eq", "in", "is_null")
_RANGED = ("range", "like", "not_null")


def detect_unindexed_filters(context: AnalysisContext) -> list[Finding]:
    """Return one finding per table and filter shape that no index serves."""
    merged: dict[tuple[str, tuple[str, ...]], Finding] = {}
    for fp in context.profile.costliest():
        if not _may_filter(fp):
            continue  # parsed only when it may filter: sqlglot takes milliseconds
        usage = context.usage(fp)
        if usage is None:
            continue
        for table, columns, via in _unserved(context, fp, usage):
            key = (table.lower(), tuple(c.lower() for c in columns))
            found = merged.get(key)
            if found is None:
                merged[key] = _finding(context, fp, table, columns, via)
            else:
                _merge(context, found, fp)
    return list(merged.values())


def _may_filter(fp: FingerprintProfile) -> bool:
    """Return False when the statement cannot filter a table: its plan reads none,
    or it has no WHERE, ON or USING (a CREATE, an INSERT ... VALUES)."""
    if fp.plans and not any(plan_steps(v.plan) for v in fp.plans):
        return False
    return _FILTER_WORD.search(without_literals(fp.sample_sql)) is not None


_FILTER_WORD = re.compile(r"\b(?:WHERE|ON|USING)\b", re.IGNORECASE)


def _unserved(
    context: AnalysisContext, fp: FingerprintProfile, usage: StatementUsage
) -> list[tuple[str, list[str], str]]:
    groups: dict[tuple[str, int], list[ColumnUse]] = {}
    for use in usage.predicates:
        groups.setdefault((use.table, use.scope), []).append(use)
    found = []
    for (table, _scope), uses in groups.items():
        info = context.table_named(table)
        if info is None or info.kind != "table":
            continue
        local = [u for u in uses if u.role != "join" and u.expression is None]
        local = [u for u in local if u.op in _EQUAL + _RANGED]
        equal = {u.column for u in local if u.op in _EQUAL}
        ranged = {u.column for u in local if u.op in _RANGED}
        columns = _unique(u.column for u in local)
        if columns and all(
            serving_index(info, equal, ranged, c) is None for c in columns
        ):
            found.append((info.name, columns, "filter"))
            continue
        if columns:
            continue
        joins = _unique(
            u.column
            for u in uses
            if u.role == "join"
            and u.expression is None
            and serving_index(info, {u.column}, set(), u.column) is None
        )
        if joins and is_scanned_inside_join(fp.plan, usage.tables, info.name):
            found.append((info.name, joins, "join"))
    return found


def _finding(
    context: AnalysisContext,
    fp: FingerprintProfile,
    table: str,
    columns: list[str],
    via: str,
) -> Finding:
    time_share, _ = context.shares(fp)
    rows = context.schema.row_count(table)
    small = rows and rows < context.thresholds.scan_min_rows
    severity = "low" if small else ("high" if time_share >= 0.05 else "medium")
    what = "joins" if via == "join" else "filters"
    listed = ", ".join(columns)
    return context.finding(
        fp,
        kind="unindexed_filter",
        severity=severity,
        message=f"The statement {what} {table} on {listed}, and no index of {table} can "
        f"serve {'it' if len(columns) == 1 else 'them'}: every run reads the table row by row.",
        advice=f"Create an index on {table}({listed}) (equality columns first; see the "
        "recommendations for the measured choice).",
        table=table,
        columns=tuple(columns),
        evidence={"table_rows": rows, "predicate": via},
    )


def _merge(context: AnalysisContext, finding: Finding, fp: FingerprintProfile) -> None:
    finding.fingerprints += (fp.fingerprint.id,)
    fps = [context.profile.fingerprints[f] for f in finding.fingerprints]
    finding.time_share, finding.vm_share = context.shares(*fps)
    finding.evidence["count"] = sum(f.count for f in fps)
    finding.evidence["total_ns"] = sum(f.total_ns for f in fps)
    finding.evidence["vm_steps"] = sum(f.vm_step for f in fps)
    if finding.time_share >= 0.05 and finding.severity == "medium":
        finding.severity = "high"


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for item in items:
        seen.setdefault(item.lower(), item)
    return list(seen.values())
