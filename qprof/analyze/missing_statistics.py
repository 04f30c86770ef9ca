"""missing_statistics: the database was never analysed, and that changes plans.

Without ``sqlite_stat1`` the planner guesses how selective each index is. The
detector copies the database to a scratch file (SQLite's backup API), runs
ANALYZE there, and takes the plans of the costliest read statements again
with their sample values. Each statement whose plan changes is a finding,
with its VM steps measured on both sides (statistics can make one statement
faster and another slower: both are reported). The scratch copy is removed.
"""

from __future__ import annotations

import apsw

from qprof.analyze.finding import AnalysisContext, Finding
from qprof.analyze.plans import plan_steps, step_table
from qprof.plan import Plan, explain_plan
from qprof.profile import FingerprintProfile
from qprof.tempdirs import scratch_folder
from qprof.trace import Params

CHECKED = 25
"""How many of the costliest read fingerprints are tried with fresh statistics."""


def detect_missing_statistics(context: AnalysisContext) -> list[Finding]:
    """Return one finding per costly statement whose plan ANALYZE would change."""
    source = context.connection
    schema = context.schema
    if source is None or schema.has_stat1 or not _has_indexes(context):
        return []
    candidates = [fp for fp in context.profile.costliest() if fp.readonly and fp.plan][
        :CHECKED
    ]
    if not candidates:
        return []
    with scratch_folder("qprof-analyze-") as folder:
        scratch = apsw.Connection(str(folder / "scratch.db"))
        with scratch.backup("main", source, "main") as backup:
            backup.step(-1)
        scratch.execute("ANALYZE")
        findings = []
        for fp in candidates:
            finding = _compare(context, scratch, fp)
            if finding is not None:
                findings.append(finding)
        scratch.close()
        return findings


def _compare(
    context: AnalysisContext, scratch: apsw.Connection, fp: FingerprintProfile
) -> Finding | None:
    source = context.connection
    assert source is not None
    try:
        before = explain_plan(source, fp.sample_sql, fp.sample_params)
        after = explain_plan(scratch, fp.sample_sql, fp.sample_params)
    except apsw.Error:
        return None
    if before == after:
        return None
    steps_before = _vm_steps(source, fp.sample_sql, fp.sample_params)
    steps_after = _vm_steps(scratch, fp.sample_sql, fp.sample_params)
    if steps_before is None or steps_after is None:
        return None
    usage = context.usage(fp)
    table = _changed_table(before, after, usage.tables if usage else {})
    better = steps_after < steps_before
    return context.finding(
        fp,
        kind="missing_statistics",
        severity="medium" if better else "low",
        message=f"The database has no sqlite_stat1: after ANALYZE this statement's plan "
        f"changes and its VM steps go from {steps_before:,} to {steps_after:,} "
        f"({'faster' if better else 'slower'}).",
        advice="Run ANALYZE (or PRAGMA optimize) on the database, and keep it run as the "
        "data grows."
        if better
        else "Statistics would make this statement slower: "
        "check its plan before running ANALYZE, or pin it with an index.",
        table=table,
        evidence={
            "plan_before": [str(line) for line in before],
            "plan_after": [str(line) for line in after],
            "vm_steps_before": steps_before,
            "vm_steps_after": steps_after,
        },
    )


def _vm_steps(connection: apsw.Connection, sql: str, params: Params) -> int | None:
    events: list[dict] = []
    connection.trace_v2(apsw.SQLITE_TRACE_PROFILE, events.append, id="qprof-statistics")
    try:
        for _ in connection.execute(sql, params):
            pass
    except apsw.Error:
        return None
    finally:
        connection.trace_v2(0, None, id="qprof-statistics")
    return (
        int(events[-1]["stmt_status"]["SQLITE_STMTSTATUS_VM_STEP"]) if events else None
    )


def _changed_table(before: Plan, after: Plan, aliases: dict[str, str]) -> str | None:
    old = {s.line.detail for s in plan_steps(before)}
    for step in plan_steps(after):
        if step.line.detail not in old:
            return step_table(step.name, aliases)
    steps = plan_steps(after)
    return step_table(steps[0].name, aliases) if steps else None


def _has_indexes(context: AnalysisContext) -> bool:
    return any(t.indexes for t in context.schema.tables.values() if t.kind == "table")
