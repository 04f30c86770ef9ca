"""offset_pagination: deep OFFSET values, whose skipped rows are still stepped.

SQLite reads and discards every row before the OFFSET, so page 1,000 costs a
thousand pages. The offsets come from the statements kept as samples (the
first ones and the costliest ones, which are the deep pages).
"""

from __future__ import annotations

from qprof.analyze.finding import AnalysisContext, Finding
from qprof.fingerprint import offset_value


def detect_offset_pagination(context: AnalysisContext) -> list[Finding]:
    """Return one finding per fingerprint paging with a deep OFFSET."""
    findings = []
    for fp in context.profile.costliest():
        text = fp.fingerprint.text
        if "OFFSET" not in text and "LIMIT ?, ?" not in text:
            continue
        pages = []
        for sample in fp.samples:
            offset = offset_value(sample.sql, sample.params)
            if offset is not None:
                pages.append((offset, sample.elapsed_ns, sample.vm_step))
        pages.sort()
        if not pages or pages[-1][0] < context.thresholds.offset_min:
            continue
        usage = context.usage(fp)
        table = None
        columns: tuple[str, ...] = ()
        if usage is not None:
            if usage.order_by:
                table = usage.order_by[0].table
                columns = tuple(k.column for k in usage.order_by if k.table == table)
            elif usage.scope_tables:
                first = next(iter(usage.scope_tables.values()), [])
                table = first[0] if first else None
        deepest, shallowest = pages[-1], pages[0]
        findings.append(
            context.finding(
                fp,
                kind="offset_pagination",
                severity="high" if context.shares(fp)[0] >= 0.05 else "medium",
                message=f"Pages are fetched with OFFSET up to {deepest[0]:,}: the rows "
                f"before the offset are read and thrown away ({deepest[2]:,} VM steps at "
                f"OFFSET {deepest[0]:,} against {shallowest[2]:,} at {shallowest[0]:,}).",
                advice="Page by key instead (WHERE sort_key > :last_seen ORDER BY sort_key "
                "LIMIT n), with an index on the filter and sort columns.",
                table=table,
                columns=columns,
                evidence={
                    "offsets": [p[0] for p in pages],
                    "elapsed_ns": [p[1] for p in pages],
                    "vm_steps_per_page": [p[2] for p in pages],
                },
            )
        )
    return findings
