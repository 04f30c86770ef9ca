"""full_scan: a plan step reads a whole table (or a whole index) of some size.

Evidence is SQLite's own: a ``SCAN`` step (``SCAN t``, also ``SCAN t USING
COVERING INDEX i``), or an automatic index, which SQLite builds by reading the
whole table on every run; and the FULLSCAN_STEP counter against the rows
returned. A scan the statement needs (an aggregate over the whole table, no
filter, no sort, no LIMIT) or of a small lookup table ranks low.
"""

from __future__ import annotations

import re

from qprof.analyze.finding import AnalysisContext, Finding
from qprof.analyze.plans import PlanStep, plan_steps, step_table
from qprof.plan import Plan
from qprof.profile import FingerprintProfile
from qprof.usage import StatementUsage


def detect_full_scans(context: AnalysisContext) -> list[Finding]:
    """Return one finding per fingerprint and table read in full."""
    findings = []
    for fp in context.profile.costliest():
        scans = [
            (variant, step)
            for variant in fp.plans
            for step in plan_steps(variant.plan)
            if step.is_full_scan or step.is_automatic
        ]
        if not scans:
            continue  # parsed only when needed: sqlglot takes milliseconds a statement
        usage = context.usage(fp)
        aliases = usage.tables if usage else {}
        done: set[str] = set()
        for variant, step in scans:
            table = step_table(step.name, aliases)
            if table.lower() in done or table.lower().startswith("sqlite_"):
                continue  # SQLite's own tables (sqlite_schema, stats) are not the app's
            info = context.table_named(table)
            if info is not None and info.kind != "table":
                continue
            runs = max(fp.count, 1)
            stepped = (fp.autoindex if step.is_automatic else fp.fullscan_step) / runs
            rows = context.schema.row_count(table) or int(stepped)
            if rows < context.thresholds.scan_min_rows:
                continue
            if (
                not step.is_automatic
                and _stops_at_limit(fp, usage, table, variant.plan)
                and stepped < max(rows, 1)
            ):
                continue  # the scan ends after LIMIT rows, as the counter shows
            done.add(table.lower())
            findings.append(_finding(context, fp, usage, step, table, rows, stepped))
    return findings


def _finding(
    context: AnalysisContext,
    fp: FingerprintProfile,
    usage: StatementUsage | None,
    step: PlanStep,
    table: str,
    rows: int,
    stepped: float,
) -> Finding:
    returned = fp.rows_returned / max(fp.count, 1)
    needed = usage is not None and _scan_is_needed(usage, table)
    time_share, _ = context.shares(fp)
    if needed:
        severity = "low"
    elif time_share >= 0.05 or stepped > 100 * max(returned, 1):
        severity = "high"
    else:
        severity = "medium"
    how = (
        "builds an automatic index by reading all of"
        if step.is_automatic
        else "reads every row of"
    )
    message = (
        f"{fp.count:,} run(s) each {how} {table} ({rows:,} rows; {stepped:,.0f} rows "
        f"stepped per run for {returned:,.1f} returned): `{step.line.detail}`."
    )
    advice = (
        "The statement needs the whole table; cache or maintain the aggregate if it runs often."
        if needed
        else f"Give {table} an index on the columns this statement filters, joins or sorts it "
        "on (see the recommendations)."
    )
    return context.finding(
        fp,
        kind="full_scan",
        severity=severity,
        message=message,
        advice=advice,
        table=table,
        evidence={
            "plan_line": step.line.detail,
            "table_rows": rows,
            "rows_stepped_per_run": round(stepped, 1),
            "rows_returned_per_run": round(returned, 1),
            "fullscan_steps": fp.fullscan_step,
            "needed_by_query": needed,
        },
    )


def _stops_at_limit(
    fp: FingerprintProfile, usage: StatementUsage | None, table: str, plan: Plan
) -> bool:
    """Return True when the scan of ``table`` stops once LIMIT rows came out.

    That is so when nothing filters the table (every row scanned is a row
    returned), nothing is sorted or grouped into a temp B-tree first (which
    reads everything before the first row), and no aggregate reads it all.
    """
    if usage is None or not usage.has_limit or usage.filters_on(table):
        return False
    if any("TEMP B-TREE" in line.detail for line in plan):
        return False
    return _AGGREGATE.search(fp.sample_sql) is None


_AGGREGATE = re.compile(
    r"\b(?:count|sum|total|avg|min|max|group_concat|string_agg)\s*\(", re.IGNORECASE
)


def _scan_is_needed(usage: StatementUsage, table: str) -> bool:
    """Return True when nothing in the statement narrows what it reads of ``table``."""
    if usage.filters_on(table) or usage.has_limit:
        return False
    key = table.lower()
    sorted_on = any(k.table.lower() == key for k in usage.order_by + usage.group_by)
    return not sorted_on and key not in {t.lower() for t in usage.written}
