"""correlated_subquery: a subquery that runs again for every row of the outer query.

The plan says ``CORRELATED SCALAR SUBQUERY n`` (or ``CORRELATED LIST
SUBQUERY``); the steps nested under it run once per outer row, so a scan
there is multiplied by the outer row count.
"""

from __future__ import annotations

from qprof.analyze.finding import AnalysisContext, Finding
from qprof.analyze.plans import plan_steps, step_table


def detect_correlated_subqueries(context: AnalysisContext) -> list[Finding]:
    """Return one finding per fingerprint and table read inside a correlated subquery."""
    findings = []
    for fp in context.profile.costliest():
        plan = fp.plan
        usage = context.usage(fp)
        aliases = usage.tables if usage else {}
        for position, line in enumerate(plan):
            if not line.detail.startswith("CORRELATED "):
                continue
            inner = []
            for sub in plan[position + 1 :]:
                if sub.depth <= line.depth:
                    break
                inner.append(sub)
            steps = [
                s for s in plan_steps(tuple(inner)) if s.line.depth == line.depth + 1
            ]
            for step in steps:
                table = step_table(step.name, aliases)
                columns = tuple(
                    dict.fromkeys(
                        p.column
                        for p in (usage.filters_on(table) if usage else [])
                        if p.role == "correlated"
                    )
                )
                scan = step.is_full_scan or step.is_automatic
                findings.append(
                    context.finding(
                        fp,
                        kind="correlated_subquery",
                        severity="high" if scan else "low",
                        message=f"`{line.detail}` runs once per outer row and "
                        f"{'scans' if scan else 'searches'} {table} each time "
                        f"(`{step.line.detail}`).",
                        advice="Rewrite it as a JOIN (or a grouped subquery joined once), "
                        f"or index {table} on the correlated column(s) "
                        f"{', '.join(columns) or '(see the plan)'}.",
                        table=table,
                        columns=columns,
                        evidence={
                            "subquery": line.detail,
                            "inner_step": step.line.detail,
                        },
                    )
                )
    return findings
