"""automatic_index: SQLite built a transient index while running the statement.

``SEARCH t USING AUTOMATIC [COVERING] INDEX (a=?)`` in the plan, or the
AUTOINDEX counter, means the planner found no index for a join or filter and
judged it cheaper to build one for this run alone: a missing index, proven at
run time (https://sqlite.org/optoverview.html#autoindex).
"""

from __future__ import annotations

from qprof.analyze.finding import AnalysisContext, Finding
from qprof.analyze.plans import plan_steps, step_table
from qprof.profile import FingerprintProfile


def detect_automatic_indexes(context: AnalysisContext) -> list[Finding]:
    """Return one finding per fingerprint and table given an automatic index."""
    findings = []
    for fp in context.profile.costliest():
        steps = [s for s in plan_steps(fp.plan) if s.is_automatic]
        if not steps and fp.autoindex:
            findings.append(_finding(context, fp, None, (), "the AUTOINDEX counter"))
        if not steps:
            continue
        usage = context.usage(fp)
        aliases = usage.tables if usage else {}
        for step in steps:
            table = step_table(step.name, aliases)
            findings.append(_finding(context, fp, table, step.terms, step.line.detail))
    return findings


def _finding(
    context: AnalysisContext,
    fp: FingerprintProfile,
    table: str | None,
    columns: tuple[str, ...],
    evidence_line: str,
) -> Finding:
    on = f"{table}({', '.join(columns)})" if table else "a table"
    return context.finding(
        fp,
        kind="automatic_index",
        severity="high",
        message=f"SQLite builds an automatic index on {on} on every run "
        f"({fp.autoindex:,} rows put into transient indexes over {fp.count:,} runs).",
        advice=f"Create the index it keeps building: CREATE INDEX ON {on}.",
        table=table,
        columns=tuple(columns),
        evidence={"plan_line": evidence_line, "autoindex_rows": fp.autoindex},
    )
