"""temp_btree: the plan sorts in a temporary B-tree (ORDER BY, GROUP BY, DISTINCT).

Each ``USE TEMP B-TREE FOR ...`` line is a sort that an index in the right
order could avoid; the SORT counter says how many sorts ran.
"""

from __future__ import annotations

from qprof.analyze.finding import AnalysisContext, Finding
from qprof.analyze.plans import step_table, table_before
from qprof.profile import FingerprintProfile

_MARK = "USE TEMP B-TREE FOR "


def detect_temp_btrees(context: AnalysisContext) -> list[Finding]:
    """Return one finding per fingerprint whose plan sorts in a temp B-tree."""
    findings = []
    for fp in context.profile.costliest():
        lines = [
            (i, line) for i, line in enumerate(fp.plan) if line.detail.startswith(_MARK)
        ]
        if not lines:
            continue
        usage = context.usage(fp)
        aliases = usage.tables if usage else {}
        purposes = [line.detail[len(_MARK) :] for _, line in lines]
        name = table_before(fp.plan, lines[0][0])
        table = step_table(name, aliases) if name else None
        if table is None and usage is not None and (usage.order_by or usage.group_by):
            table = (usage.order_by + usage.group_by)[0].table
        columns: tuple[str, ...] = ()
        if usage is not None and table is not None:
            keys = usage.group_by if "GROUP BY" in purposes[0] else usage.order_by
            columns = tuple(k.column for k in keys if k.table.lower() == table.lower())
        time_share, _ = context.shares(fp)
        findings.append(
            context.finding(
                fp,
                kind="temp_btree",
                severity="medium" if time_share >= 0.05 else "low",
                message=f"Every run sorts rows in a temporary B-tree for "
                f"{' and '.join(purposes)} ({_sorts(fp)}).",
                advice="An index whose columns follow the equality filters and then the "
                "sort order lets SQLite read rows already sorted.",
                table=table,
                columns=columns,
                evidence={
                    "sorts": fp.sort,
                    "temp_btree": [line.detail for _, line in lines],
                },
            )
        )
    return findings


def _sorts(fp: FingerprintProfile) -> str:
    """Return the SORT counter over the runs, or that no counter was recorded."""
    if not fp.sort and not fp.vm_step:  # a trace without counters (stdlib sqlite3)
        return f"the plan says so; {fp.count:,} runs, no sort counts recorded"
    return f"{fp.sort:,} sorts in {fp.count:,} runs"
